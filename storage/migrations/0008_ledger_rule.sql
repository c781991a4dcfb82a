-- Reason: /quota show lists each member under the rule that governs them, and the bot cannot see members'
-- roles outside their requests; a reservation notes the role whose rule it was checked against (NULL: the
-- member rule or the operator's default). Counting is unchanged: the ledger's images are the truth.

ALTER TABLE quota_ledger ADD COLUMN rule_role_id BIGINT;
