-- Each user's token generation: tokens carry the generation they were issued in, and hold only
-- while it is the user's. A new password or a deactivation (and the reactivation after it) moves
-- it on, ending every token issued before. Before, a token was judged by its issue time against
-- the account's last change, less 30 s of clock leeway: a token issued in the 30 s before a
-- password reset outlived it. A trigger, so that a change made in SQL counts too.
ALTER TABLE users ADD COLUMN token_generation integer NOT NULL DEFAULT 0;

CREATE FUNCTION users_next_token_generation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.password_hash IS DISTINCT FROM OLD.password_hash OR NEW.active IS DISTINCT FROM OLD.active THEN
        NEW.token_generation := OLD.token_generation + 1;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER users_token_generation BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION users_next_token_generation();
