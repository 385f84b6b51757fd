-- The requester's language (Discord's interaction.locale) and the server's: a reply speaks the
-- requester's, a message no interaction started (a result posted anew) the server's.
ALTER TABLE jobs ADD COLUMN locale TEXT;
ALTER TABLE jobs ADD COLUMN guild_locale TEXT;
