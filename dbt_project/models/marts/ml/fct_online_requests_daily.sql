{#-
    The prediction service's traffic, day by day: one row per day a request arrived (UTC) and
    model version ('' for rejected requests, which no model answered). Requests and items
    answered, requests rejected, latency percentiles of the answered items. Grafana's "Online
    service" dashboard reads it (the reader cannot read ml.prediction_log itself).
-#}

with

prediction_log as (
    select * from {{ ref('stg_ml__prediction_log') }}
),

logged as (
    select
        request_id,
        status,
        prediction,
        latency_ms,
        cast(received_at at time zone 'UTC' as date) as request_date,
        coalesce(model_version, '') as model_version
    from prediction_log
),

daily as (
    select
        request_date,
        model_version,
        count(distinct case when status = 'ok' then request_id end) as answered_requests,
        count(case when status = 'ok' then 1 end) as answered_items,
        count(distinct case when status = 'rejected' then request_id end) as rejected_requests,
        count(distinct case when status = 'error' then request_id end) as failed_requests,
        avg(case when status = 'ok' then prediction end) as mean_prediction,
        percentile_cont(0.5) within group (order by case when status = 'ok' then latency_ms end)
            as latency_p50_ms,
        percentile_cont(0.95) within group (order by case when status = 'ok' then latency_ms end)
            as latency_p95_ms,
        percentile_cont(0.99) within group (order by case when status = 'ok' then latency_ms end)
            as latency_p99_ms
    from logged
    group by request_date, model_version
)

select
    request_date,
    model_version,
    cast(answered_requests as integer) as answered_requests,
    cast(answered_items as integer) as answered_items,
    cast(rejected_requests as integer) as rejected_requests,
    cast(failed_requests as integer) as failed_requests,
    mean_prediction,
    latency_p50_ms,
    latency_p95_ms,
    latency_p99_ms
from daily
