-- Tokens their holders signed out (POST /api/auth/sign-out), by token id (the jti claim), until
-- they would have expired anyway. Before, signing out only forgot the token in the browser: a
-- copy (a shared PC's restored tab, a proxy log, a stolen handheld's storage) held for the rest
-- of its 8 hours. Removed with the user; expired rows go at the user's next sign-out.
CREATE TABLE signed_out_tokens (
    token_id   text PRIMARY KEY,
    username   text NOT NULL REFERENCES users ON DELETE CASCADE ON UPDATE CASCADE,
    expires_at timestamptz NOT NULL
);
CREATE INDEX signed_out_tokens_username_idx ON signed_out_tokens (username);
