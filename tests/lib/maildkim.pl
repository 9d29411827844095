#!/usr/bin/perl
# Mail::DKIM as an interop oracle for oracles.py (message on stdin, CRLF or LF).
#
#   maildkim.pl verify
#       One line per DKIM-Signature, top first: result<TAB>d<TAB>s<TAB>a<TAB>detail.
#       Keys come from FakeDKIMDNS (PERL5LIB=shared/oracles, DKIM_FAKE_DNS=table).
#       MAILDKIM_NOW=epoch fixes the clock used for x= (expiration) checks.
#   maildkim.pl sign KEYFILE DOMAIN SELECTOR ALGORITHM METHOD HEADERS TIMESTAMP
#       Prints the DKIM-Signature header field. HEADERS is a colon list signed exactly as
#       given (h=), or "-" for Mail::DKIM's default choice; TIMESTAMP is t=, or "-" for now.
#
# The API is used instead of dkimproxy-sign, whose --timestamp option drops t= altogether.
use strict;
use warnings;

BEGIN {
    # Must precede loading Mail::DKIM so that its time() calls see the override.
    if (defined $ENV{MAILDKIM_NOW}) {
        my $now = $ENV{MAILDKIM_NOW};
        no warnings 'once';
        *CORE::GLOBAL::time = sub () { $now };
    }
}

use Mail::DKIM::Signer;
use Mail::DKIM::Signature;
use Mail::DKIM::Verifier;
use Mail::DKIM::TextWrap;    # fold the signature as dkimproxy-sign does

sub feed {
    my ($dkim) = @_;
    binmode STDIN;
    while (my $line = <STDIN>) {
        $line =~ s/\015?\012\z/\015\012/;
        $dkim->PRINT($line);
    }
    $dkim->CLOSE;
}

sub verify {
    require FakeDKIMDNS;
    die "DKIM_FAKE_DNS is not set\n" unless $ENV{DKIM_FAKE_DNS};
    my $dkim = Mail::DKIM::Verifier->new();
    feed($dkim);
    for my $sig ($dkim->signatures) {
        my $detail = $sig->result_detail // '';
        $detail =~ s/[\t\r\n]+/ /g;
        print join("\t", $sig->result // 'none', $sig->domain // '', $sig->selector // '',
                   $sig->algorithm // '', $detail), "\n";
    }
}

sub sign {
    my ($keyfile, $domain, $selector, $algorithm, $method, $headers, $timestamp) = @_;
    die "usage: maildkim.pl sign KEYFILE DOMAIN SELECTOR ALGORITHM METHOD HEADERS TIMESTAMP\n"
        unless defined $timestamp;
    my $policy = sub {
        my ($signer) = @_;
        $signer->add_signature(Mail::DKIM::Signature->new(
            Algorithm => $algorithm,
            Method    => $method,
            Domain    => $domain,
            Selector  => $selector,
            Headers   => $headers eq '-' ? $signer->headers : $headers,
            $timestamp eq '-' ? (Timestamp => time()) : (Timestamp => $timestamp),
        ));
        return;
    };
    my $dkim = Mail::DKIM::Signer->new(Policy => $policy, KeyFile => $keyfile);
    feed($dkim);
    my $signature = $dkim->signature or die "Mail::DKIM produced no signature\n";
    print $signature->as_string, "\n";
}

my $mode = shift @ARGV // '';
if ($mode eq 'verify') { verify(); }
elsif ($mode eq 'sign') { sign(@ARGV); }
else { die "usage: maildkim.pl verify | sign ...\n"; }
