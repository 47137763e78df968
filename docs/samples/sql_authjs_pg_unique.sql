-- For tables made from an older @auth/pg-adapter schema.sql, which has no unique
-- constraints on these columns: without them, two first sign-ins with one address
-- racing each other can make two users.
CREATE UNIQUE INDEX users_email_key ON users (email);
CREATE UNIQUE INDEX sessions_session_token_key ON sessions ("sessionToken");
