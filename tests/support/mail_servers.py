"""Remote mailboxes on loopback for the fetch jobs' tests: a POP3 server (RFC 1939 with
UIDL, CAPA and STLS) and a minimal IMAP4rev1 server with what imaplib and a fetcher need
(CAPABILITY, STARTTLS, LOGIN, LIST, SELECT/EXAMINE with UIDVALIDITY, UID SEARCH, UID
FETCH RFC822.SIZE / BODY.PEEK[], UID STORE +FLAGS \\Deleted, EXPUNGE, CLOSE, LOGOUT).

Both serve one `RemoteMailbox` (folders of messages with UIDs) and one account, in plain
text, with STARTTLS (`tls="starttls"`) or implicit TLS (`tls="ssl"`) given a server context
(tests/support/tls_ca.py). `commands` records what clients sent (the password masked).
"""

from __future__ import annotations

import re
import secrets
import socketserver
import ssl
import threading
from dataclasses import dataclass, field

BAD_LOGIN_IMAP = "[AUTHENTICATIONFAILED] Invalid credentials (Failure)"
BAD_LOGIN_POP3 = "-ERR [AUTH] Authentication failed: invalid user or password"


@dataclass
class RemoteMessage:
    uid: int
    data: bytes
    flags: set[str] = field(default_factory=set)


@dataclass
class RemoteFolder:
    uidvalidity: int = field(default_factory=lambda: secrets.randbelow(2**31) + 1)
    uidnext: int = 1
    messages: list[RemoteMessage] = field(default_factory=list)


class RemoteMailbox:
    """The remote account's mail, shared by the server threads (one lock)."""

    def __init__(
        self,
        username: str = "remote-user",
        password: str = "remote-secret",  # noqa: S107 - a test server's account
    ) -> None:
        self.username = username
        self.password = password
        self.folders: dict[str, RemoteFolder] = {"INBOX": RemoteFolder()}
        self.lock = threading.Lock()

    def add(self, data: bytes, folder: str = "INBOX") -> int:
        with self.lock:
            box = self.folders.setdefault(folder, RemoteFolder())
            uid = box.uidnext
            box.uidnext += 1
            box.messages.append(RemoteMessage(uid, data))
            return uid

    def uids(self, folder: str = "INBOX") -> list[int]:
        with self.lock:
            return [m.uid for m in self.folders[folder].messages]


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Base:
    handler: type[socketserver.StreamRequestHandler]

    def __init__(
        self,
        mailbox: RemoteMailbox,
        *,
        tls: str = "none",
        context: ssl.SSLContext | None = None,
    ) -> None:
        if tls not in ("none", "starttls", "ssl") or (tls != "none" and context is None):
            raise ValueError("tls is none, starttls or ssl (the last two need a context)")
        self.mailbox = mailbox
        self.tls = tls
        self.context = context
        self.commands: list[str] = []
        self.logins = 0

    def start(self):
        owner = self

        class Handler(self.handler):
            server_owner = owner

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Connection(socketserver.StreamRequestHandler):
    server_owner: _Base
    timeout = 10

    def setup(self) -> None:
        owner = self.server_owner
        if owner.tls == "ssl":
            self.request = owner.context.wrap_socket(self.request, server_side=True)
        self.secure = owner.tls == "ssl"
        super().setup()

    def start_tls(self) -> None:
        self.wfile.flush()
        self.request = self.server_owner.context.wrap_socket(self.request, server_side=True)
        self.rfile = self.request.makefile("rb")
        self.wfile = self.request.makefile("wb", buffering=0)
        self.secure = True

    def send(self, line: str | bytes) -> None:
        self.wfile.write((line.encode() if isinstance(line, str) else line) + b"\r\n")

    def record(self, line: str) -> None:
        self.server_owner.commands.append(line)


# --- IMAP --------------------------------------------------------------------------------

_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"|(\([^)]*\))|(\S+)')


def _args(text: str) -> list[str]:
    found = []
    for quoted, group, atom in _TOKEN.findall(text):
        if group:
            found.append(group)
        elif atom:
            found.append(atom)
        else:
            found.append(re.sub(r"\\(.)", r"\1", quoted))
    return found


def _uid_set(text: str, uids: list[int]) -> list[int]:
    top = max(uids, default=0)
    wanted: set[int] = set()
    for part in text.split(","):
        low, _, high = part.partition(":")
        a = top if low == "*" else int(low)
        b = a if not high else (top if high == "*" else int(high))
        a, b = min(a, b), max(a, b)
        wanted.update(u for u in uids if a <= u <= b)
    return sorted(wanted)


class _ImapConnection(_Connection):
    def handle(self) -> None:
        self.folder: str | None = None
        self.readonly = True
        self.authenticated = False
        self.send("* OK mailadmin test IMAP4rev1 server ready")
        while True:
            raw = self.rfile.readline(65536)
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            tag, _, rest = line.partition(" ")
            command, _, arguments = rest.partition(" ")
            command = command.upper()
            masked = line if command != "LOGIN" else f"{tag} LOGIN {_args(arguments)[0]} ****"
            self.record(masked)
            if command == "UID":
                sub, _, arguments = arguments.partition(" ")
                command = f"UID {sub.upper()}"
            method = getattr(self, "do_" + command.replace(" ", "_"), None)
            if method is None:
                self.send(f"{tag} BAD Unknown command")
                continue
            if method(tag, arguments) is False:
                return

    def capabilities(self) -> str:
        offer = " STARTTLS" if self.server_owner.tls == "starttls" and not self.secure else ""
        return "IMAP4rev1 UIDPLUS" + offer

    def do_CAPABILITY(self, tag: str, arguments: str) -> None:  # noqa: N802 - IMAP's names
        self.send(f"* CAPABILITY {self.capabilities()}")
        self.send(f"{tag} OK CAPABILITY completed")

    def do_NOOP(self, tag: str, arguments: str) -> None:  # noqa: N802
        self.send(f"{tag} OK NOOP completed")

    def do_STARTTLS(self, tag: str, arguments: str) -> None:  # noqa: N802
        if "STARTTLS" not in self.capabilities():
            self.send(f"{tag} BAD STARTTLS not available")
            return
        self.send(f"{tag} OK Begin TLS negotiation now")
        self.start_tls()

    def do_LOGIN(self, tag: str, arguments: str) -> None:  # noqa: N802
        box = self.server_owner.mailbox
        user, password = (_args(arguments) + ["", ""])[:2]
        if user == box.username and password == box.password:
            self.authenticated = True
            self.server_owner.logins += 1
            self.send(f"{tag} OK LOGIN completed")
        else:
            self.send(f"{tag} NO {BAD_LOGIN_IMAP}")

    def _authenticated(self, tag: str) -> bool:
        if not self.authenticated:
            self.send(f"{tag} BAD Log in first")
        return self.authenticated

    def do_LIST(self, tag: str, arguments: str) -> None:  # noqa: N802
        if not self._authenticated(tag):
            return
        with self.server_owner.mailbox.lock:
            names = list(self.server_owner.mailbox.folders)
        for name in names:
            self.send(f'* LIST (\\HasNoChildren) "/" "{name}"')
        self.send(f"{tag} OK LIST completed")

    def _select(self, tag: str, arguments: str, *, readonly: bool) -> None:
        if not self._authenticated(tag):
            return
        [name] = _args(arguments)[:1] or [""]
        name = "INBOX" if name.upper() == "INBOX" else name
        box = self.server_owner.mailbox
        with box.lock:
            folder = box.folders.get(name)
            if folder is None:
                self.folder = None
                self.send(f"{tag} NO [NONEXISTENT] Mailbox does not exist: {name}")
                return
            self.send(f"* {len(folder.messages)} EXISTS")
            self.send("* 0 RECENT")
            self.send("* FLAGS (\\Seen \\Deleted)")
            self.send(f"* OK [UIDVALIDITY {folder.uidvalidity}] UIDs valid")
            self.send(f"* OK [UIDNEXT {folder.uidnext}] Predicted next UID")
        self.folder, self.readonly = name, readonly
        mode = "READ-ONLY" if readonly else "READ-WRITE"
        self.send(f"{tag} OK [{mode}] {'EXAMINE' if readonly else 'SELECT'} completed")

    def do_SELECT(self, tag: str, arguments: str) -> None:  # noqa: N802
        self._select(tag, arguments, readonly=False)

    def do_EXAMINE(self, tag: str, arguments: str) -> None:  # noqa: N802
        self._select(tag, arguments, readonly=True)

    def _messages(self, tag: str) -> list[RemoteMessage] | None:
        if not self._authenticated(tag):
            return None
        if self.folder is None:
            self.send(f"{tag} BAD No mailbox selected")
            return None
        return self.server_owner.mailbox.folders[self.folder].messages

    def do_UID_SEARCH(self, tag: str, arguments: str) -> None:  # noqa: N802
        messages = self._messages(tag)
        if messages is None:
            return
        with self.server_owner.mailbox.lock:
            uids = [str(m.uid) for m in messages]
        self.send("* SEARCH" + "".join(" " + u for u in uids))
        self.send(f"{tag} OK UID SEARCH completed")

    def do_UID_FETCH(self, tag: str, arguments: str) -> None:  # noqa: N802
        messages = self._messages(tag)
        if messages is None:
            return
        wanted, _, items = arguments.partition(" ")
        items = items.upper()
        with self.server_owner.mailbox.lock:
            current = list(messages)
        for uid in _uid_set(wanted, [m.uid for m in current]):
            number, message = next((i, m) for i, m in enumerate(current, 1) if m.uid == uid)
            parts = [f"UID {uid}"]
            if "RFC822.SIZE" in items:
                parts.append(f"RFC822.SIZE {len(message.data)}")
            if "BODY.PEEK[]" in items or "BODY[]" in items:
                head = f"* {number} FETCH ({' '.join(parts)} BODY[] {{{len(message.data)}}}"
                self.send(head)
                self.wfile.write(message.data + b")\r\n")
                if "BODY[]" in items and "PEEK" not in items:
                    message.flags.add("\\Seen")
                continue
            self.send(f"* {number} FETCH ({' '.join(parts)})")
        self.send(f"{tag} OK UID FETCH completed")

    def do_UID_STORE(self, tag: str, arguments: str) -> None:  # noqa: N802
        messages = self._messages(tag)
        if messages is None:
            return
        if self.readonly:
            self.send(f"{tag} NO Mailbox is read-only")
            return
        wanted, _, rest = arguments.partition(" ")
        action, _, flags = rest.partition(" ")
        names = set(flags.strip("()").split())
        with self.server_owner.mailbox.lock:
            for message in messages:
                if message.uid in _uid_set(wanted, [m.uid for m in messages]):
                    if action.upper().startswith("+FLAGS"):
                        message.flags |= names
                    elif action.upper().startswith("-FLAGS"):
                        message.flags -= names
        self.send(f"{tag} OK UID STORE completed")

    def _expunge(self, *, announce: bool) -> None:
        box = self.server_owner.mailbox
        with box.lock:
            messages = box.folders[self.folder].messages
            for number in range(len(messages), 0, -1):
                if "\\Deleted" in messages[number - 1].flags:
                    del messages[number - 1]
                    if announce:
                        self.send(f"* {number} EXPUNGE")

    def do_EXPUNGE(self, tag: str, arguments: str) -> None:  # noqa: N802
        if self._messages(tag) is None:
            return
        if not self.readonly:
            self._expunge(announce=True)
        self.send(f"{tag} OK EXPUNGE completed")

    def do_CLOSE(self, tag: str, arguments: str) -> None:  # noqa: N802
        if self._messages(tag) is None:
            return
        if not self.readonly:
            self._expunge(announce=False)
        self.folder = None
        self.send(f"{tag} OK CLOSE completed")

    def do_LOGOUT(self, tag: str, arguments: str) -> bool:  # noqa: N802
        self.send("* BYE Logging out")
        self.send(f"{tag} OK LOGOUT completed")
        return False


class ImapServer(_Base):
    handler = _ImapConnection


# --- POP3 --------------------------------------------------------------------------------


class _Pop3Connection(_Connection):
    def handle(self) -> None:
        box = self.server_owner.mailbox
        self.user = ""
        self.session: list[RemoteMessage] | None = None
        self.deleted: set[int] = set()
        self.send("+OK mailadmin test POP3 server ready")
        while True:
            raw = self.rfile.readline(65536)
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            command, _, argument = line.partition(" ")
            command = command.upper()
            self.record(line if command != "PASS" else "PASS ****")
            if command == "QUIT":
                if self.session is not None:
                    with box.lock:
                        gone = {id(m) for i, m in enumerate(self.session, 1) if i in self.deleted}
                        inbox = box.folders["INBOX"]
                        inbox.messages = [m for m in inbox.messages if id(m) not in gone]
                self.send("+OK Bye")
                return
            method = getattr(self, "do_" + command, None)
            if method is None:
                self.send("-ERR Unknown command")
                continue
            method(argument)

    def do_CAPA(self, argument: str) -> None:  # noqa: N802 - POP3's names
        self.send("+OK Capability list follows")
        for capability in ("USER", "UIDL", "TOP"):
            self.send(capability)
        if self.server_owner.tls == "starttls" and not self.secure:
            self.send("STLS")
        self.send(".")

    def do_STLS(self, argument: str) -> None:  # noqa: N802
        if self.server_owner.tls != "starttls" or self.secure:
            self.send("-ERR STLS not available")
            return
        self.send("+OK Begin TLS negotiation")
        self.start_tls()

    def do_USER(self, argument: str) -> None:  # noqa: N802
        self.user = argument
        self.send("+OK")

    def do_PASS(self, argument: str) -> None:  # noqa: N802
        box = self.server_owner.mailbox
        if self.user == box.username and argument == box.password:
            with box.lock:
                self.session = list(box.folders["INBOX"].messages)
            self.server_owner.logins += 1
            self.send(f"+OK Logged in, {len(self.session)} messages")
        else:
            self.send(BAD_LOGIN_POP3)

    def _live(self) -> list[tuple[int, RemoteMessage]] | None:
        if self.session is None:
            self.send("-ERR Log in first")
            return None
        return [(i, m) for i, m in enumerate(self.session, 1) if i not in self.deleted]

    def _one(self, argument: str) -> tuple[int, RemoteMessage] | None:
        live = self._live()
        if live is None:
            return None
        found = next(((i, m) for i, m in live if str(i) == argument.strip()), None)
        if found is None:
            self.send("-ERR No such message")
        return found

    def do_STAT(self, argument: str) -> None:  # noqa: N802
        live = self._live()
        if live is not None:
            self.send(f"+OK {len(live)} {sum(len(m.data) for _, m in live)}")

    def do_LIST(self, argument: str) -> None:  # noqa: N802
        live = self._live()
        if live is None:
            return
        self.send(f"+OK {len(live)} messages")
        for number, message in live:
            self.send(f"{number} {len(message.data)}")
        self.send(".")

    def do_UIDL(self, argument: str) -> None:  # noqa: N802
        live = self._live()
        if live is None:
            return
        self.send("+OK")
        for number, message in live:
            self.send(f"{number} uidl-{message.uid:06d}")
        self.send(".")

    def do_RETR(self, argument: str) -> None:  # noqa: N802
        found = self._one(argument)
        if found is None:
            return
        _, message = found
        self.send(f"+OK {len(message.data)} octets")
        for line in (
            message.data.split(b"\r\n")[:-1]
            if message.data.endswith(b"\r\n")
            else (message.data.split(b"\r\n"))
        ):
            self.send(b"." + line if line.startswith(b".") else line)
        self.send(".")

    def do_DELE(self, argument: str) -> None:  # noqa: N802
        found = self._one(argument)
        if found is not None:
            self.deleted.add(found[0])
            self.send(f"+OK Message {found[0]} deleted")

    def do_NOOP(self, argument: str) -> None:  # noqa: N802
        self.send("+OK")

    def do_RSET(self, argument: str) -> None:  # noqa: N802
        self.deleted.clear()
        self.send("+OK")


class Pop3Server(_Base):
    handler = _Pop3Connection
