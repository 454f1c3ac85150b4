require ["copy", "enotify", "variables", "sluice", "reject"];
set "who" "archive";
if valid_notify_method ["mailto:a@b.test", "mailto:?to=c@d.test&subject=S%20x&body=b%0A"] {
    redirect :copy "${who}@example.org";
}
if header :contains "subject" "hello" {
    redirect "x@example.org"; redirect "X@EXAMPLE.org"; discard;
}
notify :from "Gate <gw@example.org>" :importance "1" :options ["a"]
    :message "score ${score}" "mailto:admin@example.org,b%40c.test?subject=Alert";
notify "mailto:${who}";
