{#-
    Post-hook of fct_sales_features, in the model's transaction: the changed days recorded before
    that transaction began are now built into the features (an incremental run rebuilt them, a full
    build built everything), so `salesmon score --changed` may rescore the predictions reading them.
-#}
{% macro mark_changed_days_built() %}
    update {{ source('favorita', 'changed_days') }}
    set features_built_at = now()
    where features_built_at is null and recorded_at <= now()
{% endmacro %}
