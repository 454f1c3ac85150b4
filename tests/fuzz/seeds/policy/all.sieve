require ["sluice", "variables", "editheader", "relational", "reject", "envelope", "subaddress", "enotify", "comparator-i;ascii-numeric"];
set :lower :quotewildcard "v" "A*b";
if allof (header :contains ["subject", "to"] ["x", "${v}"], not exists "x-a") { keep; }
elsif anyof (address :detail :is "from" "b", envelope :user "to" "bob", size :over 1K) { discard; }
else { stop; }
if score :value "ge" "${tag_score}" { tagsubject "[SPAM]"; quarantine text:
multi
..line
.
; }
if symbol :count "gt" "1" { addheader :last "X" "${symbols}"; deleteheader :index 1 :contains "received" "x"; }
if client :cidr ["10.0.0.0/8", "::1"] { tempfail "later"; }
if direction "outbound" { notify :message "m" "mailto:a@b"; }
if list ["allow", "block"] { reject "no"; }
if header :count "eq" :comparator "i;ascii-numeric" "received" "2" { deliver; }
/* comment */ # end
