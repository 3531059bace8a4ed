-- pgbench -n -f: PostgreSQL's own batched-upsert rate, the raw limit the postgres flush is
-- compared with (bench/run.sh). One transaction upserts 1,000 rows of the driver's table shape
-- (full mode: key, flat JSONB of the workload's five leaves), as one flush batch does.
\set b random(0, 999999)
INSERT INTO raw_upsert AS t (key, data)
SELECT 'bench::event::1m::' || (:b * 1000 + g),
       '{"count":1,"duration":2.5,"lines":241,"meta.cache.hits":3,"meta.db":0.25}'::jsonb
FROM generate_series(1, 1000) AS g
ON CONFLICT (key) DO UPDATE SET data = t.data || EXCLUDED.data;
