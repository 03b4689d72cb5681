-- Office hours per office: a schedule spelling (as a report's `schedule`,
-- e.g. `office:Asia/Dhaka:sun-thu:08:00-16:00`) the `office` schedule uses
-- for this office's devices; NULL: the circular's defaults.
ALTER TABLE offices ADD COLUMN hours TEXT NULL;
