"""pyspf with the corrections RFC 7208 asks of it, for every SPF check of the product: the
scan of received mail (apps.spamfilter.auth) and the DNS check of our own domains
(apps.domains.checks). pyspf is the library the field uses; these are where it differs from
the RFC, each found by a test."""

from __future__ import annotations

import copy
import re

import spf

_MACRO_DIGITS = re.compile(r"%\{[A-Za-z]([0-9]+)")


class RfcQuery(spf.query):
    """spf.query with RFC 7208's macro limits, ptr error handling and a lazy exp=."""

    def expand(self, s, stripdot=True):
        """RFC 7208 7.3: an expanded domain name over 253 characters loses labels from the
        left until it fits; pyspf removes one label only, and the name stayed too long.
        7.1: a DIGIT transformer is nonzero (pyspf expanded %{d0} to ""), and one above
        the number of labels takes them all (pyspf's int() refused 5,000 digits: temperror)."""
        if any(not digits.strip("0") for digits in _MACRO_DIGITS.findall(s)):
            raise spf.PermError("a macro's digit transformer is zero", s)
        s = _MACRO_DIGITS.sub(lambda m: m[0][: -len(m[1])] + m[1].lstrip("0")[:4], s)
        result = super().expand(s, stripdot)
        while stripdot and len(result) > 253 and "." in result:
            result = result.split(".", 1)[1]
        return result

    def validated_ptrs(self):
        """The client's PTR names that confirm forward (the ptr mechanism, %{p}). RFC 7208
        5.5: a DNS error on the PTR lookup means no match (7.3: %{p} is "unknown"), one on
        a name's A/AAAA lookup skips that name; pyspf ended the check with temperror."""
        try:
            names = self.dns_ptr(self.i)
        except spf.TempError:
            return []
        confirmed = []
        for name in names[: spf.MAX_PTR]:
            try:
                if self.cidrmatch(self.dns_a(name, self.A), self.cidrmax):
                    confirmed.append(name)
            except spf.TempError:
                continue
        return confirmed

    def get_explanation(self, spec):
        """RFC 7208 6.2: exp= explains a fail and changes no result. pyspf asks it while
        reading the record, before any mechanism, whatever the result: a silent server
        there spent the scan's DNS deadline and the mechanisms after it were temperror.
        Its text is asked once the result is fail (`Explanation.text`), with the macro
        values of this moment; pyspf still decides whose exp= it is (the top record's or
        a redirect target's, never an include's)."""
        later = Explanation(spf.EXPLANATIONS["fail"])
        later.query, later.spec = copy.copy(self), spec
        return later


class Explanation(str):
    """An exp= explanation not asked yet (pyspf's default text until it is)."""

    query: RfcQuery
    spec: str

    def text(self) -> str:
        try:
            return spf.query.get_explanation(self.query, self.spec) or str(self)
        except Exception:  # noqa: BLE001 - RFC 7208 6.2: any error, as if no exp= was given
            return str(self)


def explained(result: str, explanation: str) -> str:
    """The explanation of a check's result: exp='s text, asked now, for a fail only."""
    if isinstance(explanation, Explanation):
        return explanation.text() if result == "fail" else spf.EXPLANATIONS.get(result, "")
    return explanation
