"""Security mechanisms of the cloud (GB/T 22239 level 2/3, GB/T 35273).

Small modules, each one mechanism: :mod:`.config` (settings), :mod:`.passwords` (complexity policy),
:mod:`.models` (account security state, sessions, device credentials), :mod:`.lockout`, :mod:`.sessions`
(idle timeout, refresh tokens), :mod:`.totp`, :mod:`.masking` (personal data in responses), :mod:`.scoping`
(department jurisdiction), :mod:`.mqtt_auth` (mosquitto password file and ACL), :mod:`.provisioning`
(per-agent MQTT credentials), :mod:`.pki` (CA and certificates), :mod:`.http` (request size and rate limits),
:mod:`.events` (security events into the journal).
"""
