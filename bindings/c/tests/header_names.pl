#!/usr/bin/env perl
# Reads tokenward.h on stdin and fails unless every name it gives a C program is in the
# library's namespace: functions, typedefs and struct/union/enum tags start with `tw_`,
# macros with `TW_` (or are the include guard). A stray name (say, a libc function that the
# Rust code declares for itself and cbindgen copied) collides with the user's own headers.
use strict;
use warnings;

local $/;
my $h = <STDIN>;
$h =~ s{/\*.*?\*/}{}gs;
$h =~ s{//[^\n]*}{}g;
my %bad;
for ($h =~ /^\s*#\s*define\s+(\w+)/mg) { $bad{"macro $_"} = 1 unless /^(TW_|TOKENWARD_H$)/ }
$h =~ s/^\s*#[^\n]*$//mg;
$h =~ s/extern\s+"C"\s*\{//g;
$h =~ s/[{}]/;/g;
for ($h =~ /\b(?:struct|union|enum)\s+(\w+)/g) { $bad{"tag $_"} = 1 unless /^tw_/ }
for my $d (split /;/, $h) {
    $d =~ s/\s+/ /g;
    $d =~ s/^ //;
    next if $d eq '';
    if ($d =~ /^typedef\b.*?\(\s*\*\s*(\w+)\s*\)/ || $d =~ /^typedef\b.*?(\w+)\s*$/) {
        $bad{"typedef $1"} = 1 unless $1 =~ /^tw_/;
    } elsif ($d =~ /(\w+)\s*\(/) {
        $bad{"function $1"} = 1 unless $1 =~ /^tw_/;
    }
}
if (%bad) {
    print "tokenward.h declares names outside the tw_/TW_ namespace: ",
      join(", ", sort keys %bad), "\n";
    exit 1;
}
print "tokenward.h: every declared name is tw_/TW_-prefixed\n";
