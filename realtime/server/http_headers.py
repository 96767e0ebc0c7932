"""A request's header lines read into gevent's header message, without the email parser.

gevent reads headers with `http.client.parse_headers`, which hands them to the email package's
feed parser: about 50 us per request, half of what the rest of the HTTP side of a join costs.
Header blocks whose every line is a plain `Name: value` are split here with one regular
expression into the same message; any other block (folded lines, a stray CR, a line without a
name) still goes to the email parser, so the result is the same for every request
(`tests.test_units.HeaderParsingTests` compares both on generated blocks).
"""

import email.parser
import re
from http.client import HTTPException

from gevent.pywsgi import OldMessage

# The limits of http.client.parse_headers.
MAX_LINE = 65536
MAX_HEADERS = 100
# A name of printable ASCII without ':' (the email parser's header pattern), then the value, which
# the email parser (compat32) keeps without its leading blanks and its line end.
PLAIN_LINE = re.compile(r"([!-9;-~]+):[ \t]*([^\r\n]*)\r?\n\Z")
LINE_TOO_LONG = "Line too long"  # what gevent's own reader reports, refused with 400


def read_headers(fp, *args):
    """The header message of the request in `fp` (gevent's WSGIHandler.MessageClass)."""
    lines = []
    while True:
        line = fp.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            message = OldMessage()
            message.status = LINE_TOO_LONG
            return message
        if line in (b"\r\n", b"\n", b""):
            end = line.decode()
            break
        lines.append(line.decode("iso-8859-1"))
        if len(lines) >= MAX_HEADERS:
            raise HTTPException(f"got more than {MAX_HEADERS} headers")
    headers = []
    for line in lines:
        plain = PLAIN_LINE.match(line)
        if plain is None:
            return email.parser.Parser(_class=OldMessage).parsestr("".join(lines) + end)
        headers.append(plain.groups())
    message = OldMessage()
    message._headers = headers  # what the email parser fills, as (name, value) pairs
    return message
