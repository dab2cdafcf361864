-- How closely the recogniser looks at each camera's frames for small plates
-- (detectors.recognizer.LookCloser): 'always' for street cameras, 'never' for cameras
-- framed for plates; NULL: the worker's IOC_ANPR_LOOK_CLOSER.
ALTER TABLE cameras ADD COLUMN look_closer text CHECK (look_closer IN ('never', 'unsure', 'always'));
