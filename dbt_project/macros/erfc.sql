{#-
    erfc(x) for x >= 0, given x and t = 1 / (1 + x / 2), in portable SQL (PostgreSQL before 16 has no
    erf function): Numerical Recipes' Chebyshev fit `erfcc`, whose fractional error stays below
    1.2e-7 everywhere, so p-values stay exact enough deep in the tail where alerts are decided.
    The normal tail P(Z > z) is 0.5 * erfc(z / sqrt 2) for z >= 0 and 1 minus that for z < 0;
    keep x below 26 (exp() underflows beyond).
-#}
{% macro erfc(x, t) -%}
    {{ t }} * exp(
        -{{ x }} * {{ x }} - 1.26551223 + {{ t }} * (
            1.00002368 + {{ t }} * (
                0.37409196 + {{ t }} * (
                    0.09678418 + {{ t }} * (
                        -0.18628806 + {{ t }} * (
                            0.27886807 + {{ t }} * (
                                -1.13520398 + {{ t }} * (1.48851587 + {{ t }} * (-0.82215223 + {{ t }} * 0.17087277))
                            )
                        )
                    )
                )
            )
        )
    )
{%- endmacro %}
