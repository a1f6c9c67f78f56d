-- Several workers (the app's own loop, `opslens worker` processes) share the analysis queue:
-- a running job is leased to one of them until `lease_until`; a lease that runs out without
-- renewal (the worker died) makes the job takeable again. `leased_by` stays after the end as
-- the record of who ran it, with `device` saying where.
ALTER TABLE analysis_job ADD COLUMN leased_by TEXT;
ALTER TABLE analysis_job ADD COLUMN lease_until TEXT;
ALTER TABLE analysis_job ADD COLUMN device TEXT;
