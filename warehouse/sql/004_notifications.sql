-- Notifications of the alerts of marts.fct_alerts (salesmon notify, and after every monitoring
-- run). One row per alert and channel: an alert is sent at most once per channel (status 'sent');
-- a failed send is kept with its attempts and last error, and is tried again by the next run.
create table if not exists monitoring.notifications (
    alert_id text not null,
    channel text not null check (channel in ('webhook', 'email')),
    status text not null check (status in ('sent', 'failed')),
    attempts integer not null,
    first_attempt_at timestamptz not null default now(),
    last_attempt_at timestamptz not null default now(),
    sent_at timestamptz,
    last_error text,
    primary key (alert_id, channel)
);
