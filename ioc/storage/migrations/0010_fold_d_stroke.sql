-- Plates are stored with Đ folded to D (detectors.plate_format.canonical); patterns
-- saved before queries folded it too could match no read exactly. updated_at moves,
-- so the API publishes the changed entries to the workers again.
UPDATE watchlist_entries
   SET pattern = replace(pattern, 'Đ', 'D'), updated_at = now()
 WHERE strpos(pattern, 'Đ') > 0;
