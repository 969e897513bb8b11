-- The language a merchant reads its answers and pages in when a request does not ask
-- for one (Accept-Language): a BCP 47 tag the service speaks.
ALTER TABLE merchants
    ADD COLUMN locale text NOT NULL DEFAULT 'en'
        CONSTRAINT merchants_locale_known CHECK (locale IN ('en', 'zh-CN'));
