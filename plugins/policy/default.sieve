# default.sieve - sluice's default policy (stage `policy`).
#
# Built into the stage; to change it, copy this file, edit it, and name
# the copy in conf.d/70-policy.conf (`script /etc/sluice/policy.sieve`).
# Check it first with `sluicectl policy check FILE`.
#
# Variables set by the stage: ${score} (the message's score), ${symbols}
# (the top five symbols with their scores), ${direction}, and each
# threshold from conf.d: ${tag_score}, ${quarantine_score}.
require ["sluice", "variables", "editheader", "relational", "reject"];

# Verdict headers are ours alone: drop any a sender forged.
deleteheader "X-Sluice-Spam";
deleteheader "X-Sluice-Policy";

# 1. Lists first: an allowed sender (or client network) skips the spam
#    thresholds; a blocked one is refused.
if list "allow" {
    addheader "X-Sluice-Policy" "allowed; score=${score}";
    keep;
    stop;
}
if list "block" {
    reject "sender or client is on the block list";
    stop;
}

# 2. High-confidence spam: quarantined (the quarantine stage stores it).
if score :value "ge" "${quarantine_score}" {
    addheader "X-Sluice-Spam" "yes; score=${score}; symbols=${symbols}";
    quarantine "score ${score} >= ${quarantine_score}";
    stop;
}

# 3. Probable spam: tagged and delivered.
if score :value "ge" "${tag_score}" {
    tagsubject "[SPAM]";
    addheader "X-Sluice-Spam" "yes; score=${score}; symbols=${symbols}";
    addheader "X-Sluice-Policy" "tagged; score=${score}";
    stop;
}

# 4. Everything else: delivered, with a status header.
addheader "X-Sluice-Policy" "clean; score=${score}";
