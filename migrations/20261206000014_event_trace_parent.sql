-- The W3C trace context (traceparent) of the request or run that caused an event, when
-- traces are exported: each webhook delivery attempt, a trace of its own, links to it.
ALTER TABLE events
    ADD COLUMN trace_parent text
        CONSTRAINT events_trace_parent_shape
            CHECK (trace_parent ~ '^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$');
