"""Will this kernel accept that kernel file for kexec? Signatures on kernel files and the keys a kernel trusts.

Under Secure Boot a distribution kernel runs locked down: kexec_load is refused, and kexec_file_load
takes only a kernel whose Authenticode (PE/PKCS#7) signature chains to a key the running kernel
trusts. The kernel decides in kexec_kernel_verify_pe_sig: the builtin and secondary keyrings first
(the secondary holds the machine keyring: MOK), then, on -ENOKEY and with
CONFIG_INTEGRITY_PLATFORM_KEYRING, the platform keyring (UEFI db). pkcs7_validate_trust_one accepts a
chain when one of its certificates is itself a trusted key, or when the top certificate's authority
key id names one. This module repeats that decision from what can be read without loading anything:

- the file: its PE certificate table and the PKCS#7 in it, read by a small DER reader (signer,
  issuer, authority key id); a gzip or EFI zboot (gzip) compressed image is looked into, since
  kexec-tools hands kexec_file_load the image inside;
- the host: the asymmetric keys in /proc/keys ("<name>: <subject key id>: X509.rsa ..."), and the
  doctor's findings on lockdown, Secure Boot and the kernel's config.

What it does not repeat: the signature's digest over the image (a tampered file is predicted
accepted, then refused by the kernel with EKEYREJECTED), dbx and the blacklist keyring, and which
keyring holds a key (/proc/keys does not say: every asymmetric key counts as trusted).
"""

from __future__ import annotations

from . import ops
from .errors import BlockedError, KexecBinError, UsageError
from .findings import BLOCKED, OK, SIGNED, UNKNOWN, Support
from .read import Tree, read_regular, read_span

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Iterator

    from .plan.model import PlannedFile

NOT_PE = "not a PE image (kexec_file_load verifies PE signatures only)"
# A PE image's headers (DOS stub, PE header, optional header with its data directories) lie in its first KiB.
HEAD_BYTES = 4096
# Largest kernel file read (distribution kernels are 5-15 MiB; an ISO's or a UKI's up to ~100 MiB).
KERNEL_LIMIT = 256 * 1024 * 1024
KEYS_LIMIT = 4 * 1024 * 1024
ACCEPTED, REFUSED = "accepted", "refused"  # and UNKNOWN, the doctor's word
# The doctor's checks that say whether kexec needs a signature here, shown with a --kernel verdict.
HOST_POLICY = ("lockdown", "secure boot", "signature")
FIRMWARE_FIX = "or boot it through the firmware instead of kexec (`--via firmware`)"
# The IMA policy as the kernel shows it (only with CONFIG_IMA_READ_POLICY, to root).
IMA_POLICY = "/sys/kernel/security/ima/policy"
# Where a distribution puts the signed image of a kernel beside the unsigned one.
SIGNED_SUFFIXES = (".efi.signed", ".signed")

_WIN_CERT_TYPE_PKCS_SIGNED_DATA = 0x0002
_CERTIFICATE_TABLE = 4  # the index of the security directory in the PE optional header
# DER object identifiers, as their encoded bytes.
_OID_SIGNED_DATA = bytes.fromhex("2a864886f70d010702")  # 1.2.840.113549.1.7.2
_OID_COMMON_NAME = bytes.fromhex("550403")  # 2.5.4.3
_OID_ORGANIZATION = bytes.fromhex("55040a")  # 2.5.4.10
_OID_SUBJECT_KEY_ID = bytes.fromhex("551d0e")  # 2.5.29.14
_OID_AUTHORITY_KEY_ID = bytes.fromhex("551d23")  # 2.5.29.35


class Certificate:
    """One X.509 certificate of a signature: names as the kernel shows them, and its key ids."""

    __slots__ = ("authority_key_id", "issuer", "serial", "subject", "subject_key_id")

    def __init__(self, subject: str, issuer: str, serial: str, subject_key_id: str, authority_key_id: str) -> None:
        self.subject, self.issuer, self.serial = subject, issuer, serial
        self.subject_key_id, self.authority_key_id = subject_key_id, authority_key_id

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__slots__}


class Signature:
    """The Authenticode signature of a kernel file: its signer's certificate and the chain above it."""

    __slots__ = ("chain", "issuer", "serial")

    def __init__(self, issuer: str, serial: str, chain: tuple) -> None:
        self.issuer, self.serial = issuer, serial  # from the SignerInfo: who signed, by issuer and serial
        self.chain: tuple[Certificate, ...] = (
            chain  # the signer's certificate first, then its issuers found in the message
        )

    @property
    def signer(self) -> str:
        return self.chain[0].subject if self.chain else f"serial {self.serial}"

    def as_dict(self) -> dict:
        return {
            "signer": self.signer,
            "issuer": self.issuer,
            "chain": [certificate.as_dict() for certificate in self.chain],
        }


class Key:
    """One asymmetric key the kernel holds, from /proc/keys: its name and subject key id."""

    __slots__ = ("key_id", "name")

    def __init__(self, name: str, key_id: str) -> None:
        self.name, self.key_id = name, key_id

    def __str__(self) -> str:
        return f"{self.name} ({self.key_id})"


# ---------------------------------------------------------------- DER


def _element(data: bytes, offset: int) -> tuple[int, int, int]:
    """(tag, start of contents, end of contents) of the DER element at `offset`; ValueError when damaged."""
    if offset + 2 > len(data):
        raise ValueError("DER element past the end")
    tag, length = data[offset], data[offset + 1]
    offset += 2
    if length & 0x80:
        count = length & 0x7F
        if not 0 < count <= 4 or offset + count > len(data):
            raise ValueError("DER length")
        length = int.from_bytes(data[offset : offset + count], "big")
        offset += count
    if offset + length > len(data):
        raise ValueError("DER element longer than its container")
    return tag, offset, offset + length


def _children(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """The elements inside a constructed element's contents [start, end)."""
    while start < end:
        element = _element(data, start)
        yield element
        start = element[2]


def _sequence(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    return list(_children(data, start, end))


def _name(data: bytes, start: int, end: int) -> str:
    """An X.509 Name the way the kernel names a key: CN, "O: CN" when CN does not begin with O, else O."""
    found: dict[bytes, str] = {}
    for _, set_start, set_end in _children(data, start, end):
        for _, pair_start, pair_end in _children(data, set_start, set_end):
            (_, oid_start, oid_end), (_, value_start, value_end) = _sequence(data, pair_start, pair_end)[:2]
            found.setdefault(data[oid_start:oid_end], data[value_start:value_end].decode("utf-8", "replace"))
    common, organization = found.get(_OID_COMMON_NAME), found.get(_OID_ORGANIZATION)
    if common and organization and not common.startswith(organization):
        return f"{organization}: {common}"
    return common or organization or "(no name)"


def _certificate(data: bytes, start: int, end: int) -> tuple[Certificate, bytes, bytes]:
    """A Certificate, and its raw issuer and subject Names (to link a chain)."""
    (_, tbs_start, tbs_end) = _sequence(data, start, end)[0]
    fields = _sequence(data, tbs_start, tbs_end)
    if fields[0][0] == 0xA0:  # [0] version
        fields = fields[1:]
    serial, _, issuer, _, subject = fields[:5]
    subject_key_id = authority_key_id = ""
    for tag, ext_start, _ in fields[6:]:
        if tag != 0xA3:  # [3] extensions
            continue
        (_, list_start, list_end) = _element(data, ext_start)
        for _, one_start, one_end in _children(data, list_start, list_end):
            parts = _sequence(data, one_start, one_end)
            oid, value = data[parts[0][1] : parts[0][2]], parts[-1]
            if oid == _OID_SUBJECT_KEY_ID:
                _, id_start, id_end = _element(data, value[1])
                subject_key_id = data[id_start:id_end].hex()
            elif oid == _OID_AUTHORITY_KEY_ID:
                (_, akid_start, akid_end) = _element(data, value[1])
                for tag, id_start, id_end in _children(data, akid_start, akid_end):
                    if tag == 0x80:  # [0] keyIdentifier
                        authority_key_id = data[id_start:id_end].hex()
    certificate = Certificate(
        subject=_name(data, subject[1], subject[2]),
        issuer=_name(data, issuer[1], issuer[2]),
        serial=data[serial[1] : serial[2]].hex(),
        subject_key_id=subject_key_id,
        authority_key_id=authority_key_id,
    )
    return certificate, data[issuer[1] : issuer[2]], data[subject[1] : subject[2]]


def parse_pkcs7(data: bytes) -> Signature:
    """The first signer of a PKCS#7 SignedData (ContentInfo) and its chain; ValueError when it is not one."""
    try:
        (_, info_start, info_end) = _element(data, 0)
        (_, oid_start, oid_end), (_, explicit_start, _) = _sequence(data, info_start, info_end)[:2]
        if data[oid_start:oid_end] != _OID_SIGNED_DATA:
            raise ValueError("not PKCS#7 signed data")
        (_, signed_start, signed_end) = _element(data, explicit_start)
        fields = _sequence(data, signed_start, signed_end)
        certificates = []
        for tag, start, end in fields[3:]:
            if tag == 0xA0:  # [0] IMPLICIT certificates
                certificates = [_certificate(data, s, e) for _, s, e in _children(data, start, end)]
        (_, infos_start, infos_end) = fields[-1]
        (_, first_start, first_end) = next(_children(data, infos_start, infos_end))
        sid = _sequence(data, first_start, first_end)[1]
        if sid[0] != 0x30:  # a SubjectKeyIdentifier sid (version 3): rare for Authenticode
            raise ValueError("a signer named by key id")
        (_, name_start, name_end), (_, serial_start, serial_end) = _sequence(data, sid[1], sid[2])[:2]
        issuer_raw, serial = data[name_start:name_end], data[serial_start:serial_end].hex()
    except (ValueError, IndexError, StopIteration) as error:
        raise ValueError(f"the signature is not PKCS#7 that can be read ({error})") from None
    chain: list[Certificate] = []
    wanted = next((c for c in certificates if c[0].serial == serial and c[1] == issuer_raw), None)
    while wanted is not None and wanted[0] not in chain:  # up the chain inside the message; a loop ends it
        chain.append(wanted[0])
        if wanted[1] == wanted[2]:
            break  # self-signed: a root
        wanted = next((c for c in certificates if c[2] == wanted[1]), None)
    return Signature(issuer=_name(data, name_start, name_end), serial=serial, chain=tuple(chain))


# ---------------------------------------------------------------- PE


def _u16(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset : offset + 2], "little")


def _u32(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset : offset + 4], "little")


def signature_of_file(path: str) -> tuple[str, Signature | None]:
    """`signature_of` the kernel file at `path`, reading only its header and its certificate table when
    it is a plain PE image (a distribution kernel: its 8 MiB between are not needed)."""
    head = read_span(path, 0, HEAD_BYTES, "kernel")
    if head[:2] != b"MZ" or head[4:8] == b"zimg":  # compressed: the image inside decides
        return signature_of(read_regular(path, KERNEL_LIMIT, "kernel"))
    return _pe_signature(head, lambda offset, size: read_span(path, offset, size, "kernel"))


def signature_of(image: bytes) -> tuple[str, Signature | None]:
    """(what the file is, its signature or None) for the image kexec_file_load would be given.

    A gzip-compressed image (arm64's vmlinuz) and an EFI zboot image (a PE whose payload is the
    compressed kernel) are looked into: kexec-tools decompresses them and loads the image inside,
    so that image's signature is the one the kernel checks.
    """
    if image[:2] == b"\x1f\x8b":
        return _inside("gzip-compressed", _gunzip(image))
    if image[:2] != b"MZ" or len(image) < 0x40:
        return NOT_PE, None
    if image[4:8] == b"zimg":  # EFI zboot: payload offset and size at 8 and 12, compression name at 24
        start, size = _u32(image, 8), _u32(image, 12)
        method = image[24:32].rstrip(b"\0").decode("ascii", "replace")
        if method != "gzip":
            raise UsageError(
                f"EFI zboot image compressed with {method!r}: only gzip is read here; "
                "decompress it, or check the kernel's signature with sbverify"
            )
        return _inside("EFI zboot (gzip)", _gunzip(image[start : start + size]))
    return _pe_signature(image, lambda offset, size: image[offset : offset + size])


def _pe_signature(head: bytes, read: Callable[[int, int], bytes]) -> tuple[str, Signature | None]:
    """(what the PE image with these headers is, its signature), `read(offset, size)` giving its bytes."""
    kind, table = _certificate_table(head)
    if table is None:
        return kind, None
    offset, size = table
    return kind, _pkcs7_of_table(read(offset, size), size)


def _certificate_table(head: bytes) -> tuple[str, tuple[int, int] | None]:
    """(what the PE image is, (file offset, size) of its certificate table or None), from its headers."""
    pe = _u32(head, 0x3C)
    if head[pe : pe + 4] != b"PE\0\0":
        return NOT_PE, None
    optional = pe + 24
    directories = optional + {0x10B: 96, 0x20B: 112}.get(_u16(head, optional), 0)
    if directories == optional or _u32(head, directories - 4) <= _CERTIFICATE_TABLE:
        return "PE image without a certificate table", None
    entry = directories + 8 * _CERTIFICATE_TABLE
    offset, size = _u32(head, entry), _u32(head, entry + 4)
    return "PE image", (offset, size) if offset and size >= 8 else None


def _pkcs7_of_table(table: bytes, size: int) -> Signature | None:
    """The signature in a PE certificate table (WIN_CERTIFICATE: length, revision, type, then PKCS#7)."""
    if len(table) < size:
        raise ValueError("its certificate table lies past the end of the file")
    length, kind = _u32(table, 0), _u16(table, 6)
    if kind != _WIN_CERT_TYPE_PKCS_SIGNED_DATA or length < 8:
        raise ValueError(f"a certificate of type {kind:#x}, not PKCS#7")
    return parse_pkcs7(table[8 : min(length, size)])


def _inside(what: str, inner: bytes | None) -> tuple[str, Signature | None]:
    if inner is None:
        return f"{what}, damaged or larger than {KERNEL_LIMIT >> 20} MiB inside", None
    kind, signature = signature_of(inner)
    return f"{what}: {kind}", signature


def _gunzip(data: bytes) -> bytes | None:
    import zlib

    inflate = zlib.decompressobj(wbits=47)  # gzip or zlib header
    try:
        inner = inflate.decompress(data, KERNEL_LIMIT + 1)
    except zlib.error:
        return None
    return inner if len(inner) <= KERNEL_LIMIT else None


# ---------------------------------------------------------------- the host's keys


def trusted_keys(text: str) -> list[Key]:
    """The asymmetric keys in /proc/keys text: "... asymmetri <name>: <subject key id>: X509.rsa ..."."""
    keys = []
    for line in text.splitlines():
        words = line.split(None, 8)
        if len(words) < 9 or words[7] != "asymmetri":
            continue
        name, _, rest = words[8].rpartition(": X509.")
        name, _, key_id = name.rpartition(": ")
        if name and rest and key_id and all(c in "0123456789abcdef" for c in key_id):
            keys.append(Key(name, key_id))
    return keys


def trusting_key(signature: Signature, keys: list[Key]) -> Key | None:
    """The key that makes the kernel trust `signature` (pkcs7_validate_trust_one), or None.

    A certificate of the chain that is itself a key (by subject key id, or by serial when it has
    none: the kernel names such a key by it), else a key named by the top certificate's authority
    key id.
    """
    by_id = {key.key_id: key for key in keys}
    for certificate in signature.chain:
        found = by_id.get(certificate.subject_key_id or certificate.serial)
        if found:
            return found
    top = signature.chain[-1] if signature.chain else None
    return by_id.get(top.authority_key_id) if top and top.authority_key_id else None


# ---------------------------------------------------------------- the verdict


class Prediction:
    """Whether the kernel under `root` accepts a kernel file for kexec, why, and what to do if not."""

    __slots__ = (
        "file",
        "host_fixes",
        "keys",
        "kind",
        "reason",
        "root",
        "signature",
        "support",
        "syscall",
        "trusted_by",
        "verdict",
    )

    def __init__(self, file: str, root: str) -> None:
        self.file, self.root = file, root
        self.kind = ""
        self.signature: Signature | None = None
        self.keys: list[Key] | None = None  # None: /proc/keys unreadable
        self.trusted_by: Key | None = None
        self.verdict, self.reason, self.syscall = UNKNOWN, "", ops.AUTO
        self.support: Support | None = None
        self.host_fixes: list[str] = []  # when the kernel refuses every kernel: the doctor's fixes

    @property
    def accepted(self) -> bool:
        return self.verdict == ACCEPTED

    def needed(self) -> list[str]:
        """The keys a refused signature would need: its chain's key ids and the authority above it."""
        if self.signature is None or self.host_fixes:  # no key helps a kernel that refuses every kernel
            return []
        wanted = [f"{c.subject} ({c.subject_key_id})" for c in self.signature.chain if c.subject_key_id]
        top = self.signature.chain[-1] if self.signature.chain else None
        if top and top.authority_key_id:
            wanted.append(f"{top.issuer} ({top.authority_key_id})")
        return list(dict.fromkeys(wanted)) or [self.signature.issuer]  # a self-signed signer names itself twice

    def fixes(self) -> list[str]:
        if self.accepted:
            return []
        if self.host_fixes:
            return [*self.host_fixes, FIRMWARE_FIX]
        if self.verdict == UNKNOWN and self.keys is None:
            return ["run it as root: /proc/keys shows the kernel's trusted keys to root only"]
        fixes = [
            "load a kernel this host trusts: the distribution's signed kernel (Debian: linux-image-*), "
            "rather than a self-built or re-signed one",
            "or enrol the signer's certificate in the machine owner keys: `mokutil --import CERT.der` asks "
            "for a one-time password; at the next boot shim's MokManager asks for it on the console "
            "(Enroll MOK), and from then on the kernel trusts the key",
        ]
        return [*fixes, FIRMWARE_FIX]

    def to_dict(self) -> dict:
        return {
            "file": self.file,
            "root": self.root,
            "verdict": self.verdict,
            "accepted": self.accepted,
            "reason": self.reason,
            "syscall": self.syscall,
            "image": self.kind,
            "signature": self.signature.as_dict() if self.signature else None,
            "trusted_by": str(self.trusted_by) if self.trusted_by else None,
            "needs": [] if self.accepted else self.needed(),
            "trusted_keys": None if self.keys is None else [str(key) for key in self.keys],
            "fixes": self.fixes(),
            "findings": [f.as_dict() for f in self.support.findings] if self.support else [],
        }

    def to_json(self) -> str:
        import json

        return json.dumps(self.to_dict(), indent=2)

    def to_text(self) -> str:
        signature = self.signature
        lines = [f"kexec-bin doctor --kernel {self.file} (root {self.root})", f"  image: {self.kind}"]
        if signature:
            lines.append(f"  signed by: {signature.signer}, issuer {signature.issuer}")
            for certificate in signature.chain:
                lines.append(
                    f"    {certificate.subject} (key id {certificate.subject_key_id or '-'}), "
                    f"issued by {certificate.issuer} (authority key id {certificate.authority_key_id or '-'})"
                )
        else:
            lines.append("  signed by: no signature")
        for finding in self.support.findings if self.support else ():
            if finding.check in HOST_POLICY:
                lines.append(f"  {finding.check}: {finding.meaning} ({finding.evidence})")
        if self.keys is None:
            lines.append("  keys the kernel trusts: none visible in /proc/keys (root sees them)")
        else:
            lines.append(f"  keys the kernel trusts ({len(self.keys)}, from /proc/keys):")
            lines += [f"    {key}" for key in self.keys]
        lines.append(f"verdict: {self.verdict}: {self.reason}")
        if not self.accepted and self.needed():
            lines.append(f"  it would need one of: {', '.join(self.needed())}")
        lines += [f"  fix: {fix}" for fix in self.fixes()]
        return "\n".join(lines)

    def explanation(self) -> str:
        """The refusal in a few lines, for a story command's error."""
        signer = f"signed by {self.signature.signer} (issuer {self.signature.issuer})" if self.signature else "unsigned"
        lines = [f"this kernel will not accept {self.file} ({signer}) for kexec: {self.reason}"]
        lines += [f"  fix: {fix}" for fix in self.fixes()]
        lines.append(f"  `kexec-bin doctor --kernel {self.file}` shows the whole report")
        return "\n".join(lines)


def predict(file: str, root: str = "/", support: Support | None = None) -> Prediction:
    """Whether the kernel under `root` would accept `file` for kexec now, read without loading anything."""
    from .doctor import support as doctor_support
    from .resolve import Choice, choose

    tree = Tree(root)
    prediction = Prediction(file, root)
    try:  # the file is one of this machine's, judged against the kernel under root
        prediction.kind, prediction.signature = signature_of_file(file)
    except UsageError:  # no file to judge (absent, a FIFO, a device): the one-line error, exit 64
        raise
    except ValueError as error:
        prediction.kind = f"PE image with a damaged signature ({error})"
    if support is None:  # the kernel's verdict, whichever kexec program asks: no finding on the program
        try:
            choice: Choice | None = choose()  # not verified: the program is not judged here
        except KexecBinError:
            choice = None
        found = doctor_support(root, choice)
        support = Support(
            root, found.program, found.program_source, tuple(f for f in found.findings if f.check != "program")
        )
    prediction.support = support
    keys_text = tree.read_capped("/proc/keys", KEYS_LIMIT)
    # /proc/keys shows each reader only the keys it may view: none at all means not root, not no keys.
    prediction.keys = trusted_keys(keys_text.decode("utf-8", "replace")) or None if keys_text is not None else None
    _decide(prediction, support)
    rule = _ima_kexec_appraisal(tree)
    if rule and prediction.accepted and prediction.syscall != ops.KEXEC_LOAD:
        prediction.verdict = UNKNOWN
        prediction.reason += (
            f"; but IMA also appraises kexec kernels here ({rule!r} in {tree.path(IMA_POLICY)}), "
            "and the file's IMA signature (security.ima) is not checked here"
        )
    return prediction


def _ima_kexec_appraisal(tree: Tree) -> str | None:
    """The IMA policy rule that appraises kexec kernels (func=KEXEC_KERNEL_CHECK), when the policy is visible."""
    policy = tree.read_capped(IMA_POLICY, KEYS_LIMIT)
    for line in (policy or b"").decode("utf-8", "replace").splitlines():
        words = line.split()
        if words[:1] == ["appraise"] and "func=KEXEC_KERNEL_CHECK" in words:
            return line.strip()
    return None


def _decide(prediction: Prediction, result: Support) -> None:
    """The verdict from the doctor's findings, and from the signature where only signed kernels load."""
    load, file_load = result.state(ops.LOAD, ops.KEXEC_LOAD), result.state(ops.LOAD, ops.KEXEC_FILE_LOAD)
    if load == OK:
        # kexec_file_load may want a signature (KEXEC_SIG_FORCE) where kexec_load does not: then kexec_load.
        prediction.verdict, prediction.syscall = ACCEPTED, ops.AUTO if file_load == OK else ops.KEXEC_LOAD
        prediction.reason = "the kernel is not locked down and takes kexec_load: any kernel loads, signed or not"
        return
    if file_load == OK:
        prediction.verdict, prediction.syscall = ACCEPTED, ops.KEXEC_FILE_LOAD
        prediction.reason = "kexec_file_load takes any kernel here (signatures are not required)"
        return
    if file_load == BLOCKED and load == BLOCKED:
        prediction.verdict = REFUSED
        blockers = [f for f in result.blockers(ops.LOAD) if f.status == BLOCKED]
        prediction.reason = "; ".join(dict.fromkeys(f.meaning for f in blockers)) or "the kernel refuses every load"
        prediction.host_fixes = list(dict.fromkeys(f.fix for f in blockers if f.fix))
        return
    prediction.syscall = ops.KEXEC_FILE_LOAD
    if file_load != SIGNED:
        prediction.reason = "the kernel does not publish enough to tell (its config, lockdown)"
        return
    _judge_signature(prediction)
    if prediction.verdict == REFUSED and load != BLOCKED:
        prediction.verdict = UNKNOWN
        prediction.reason += "; kexec_load might still take it (the kernel does not publish whether it would)"


def _judge_signature(prediction: Prediction) -> None:
    """kexec_file_load takes only signed kernels here: is this one signed by a key the kernel trusts?"""
    from .kernel import Kernel

    options = Kernel(prediction.root).config().value
    options = options if isinstance(options, dict) else {}
    verify = ("KEXEC_BZIMAGE_VERIFY_SIG", "KEXEC_IMAGE_VERIFY_SIG", "KEXEC_PE_IMAGE_VERIFY_SIG")
    if options and not any(options.get(option) == "y" for option in verify):
        prediction.verdict = REFUSED
        prediction.reason = (
            "signatures are required, but the kernel was built without a PE signature check "
            f"({' or '.join('CONFIG_' + o for o in verify)}): it refuses every kernel"
        )
        return
    if prediction.signature is None:
        prediction.verdict = REFUSED
        prediction.reason = (
            "no signature: kexec_file_load requires one here "
            "(the kernel answers ENODATA, or EPERM when only lockdown demands it)"
        )
        return
    if prediction.keys is None:
        prediction.reason = "signed, but /proc/keys shows no keys: the keys the kernel trusts are unknown"
        return
    platform = options.get("INTEGRITY_PLATFORM_KEYRING", "y") == "y"
    prediction.trusted_by = trusting_key(prediction.signature, prediction.keys)
    if prediction.trusted_by:
        prediction.verdict = ACCEPTED
        prediction.reason = f"signed by a chain to {prediction.trusted_by}, a key the kernel trusts"
        if not platform:
            prediction.reason += " (if it is in the builtin, secondary or machine keyring: no platform keyring here)"
    else:
        prediction.verdict = REFUSED
        prediction.reason = (
            f"the signer {prediction.signature.signer} (issuer {prediction.signature.issuer}) chains to no key "
            "the kernel trusts (builtin, secondary, machine or platform keyring): it answers ENOKEY"
        )


def check_kernel(file: str, root: str = "/", support: Support | None = None) -> Prediction:
    """The prediction for `file`; BlockedError with its explanation when the kernel will refuse this file.

    A verdict of unknown lets the caller go ahead: the kernel itself then says. So does a kernel
    that refuses every load whatever the file (no kexec, kexec_load_disabled): the preflight before
    the load names that, and a plan can still be printed.
    """
    prediction = predict(file, root, support)
    if prediction.verdict == REFUSED and not prediction.host_fixes:
        assert prediction.support is not None
        raise BlockedError(prediction.explanation(), prediction.support)
    return prediction


def choose_syscall(plan: Any, root: str = "/") -> None:
    """Before a story command prints or loads `plan` (a BootPlan): the syscall its kernel needs here.

    Under lockdown, or with signatures forced, the plan loads with kexec_file_load (kexec_load when
    only kexec_file_load wants a signature); a kernel this kernel will refuse stops the command
    here, before anything is loaded, with the reason and the fix. KEXEC_BIN_NO_CHECK=1 skips it,
    as it skips the preflight.
    """
    if ops.checks_skipped() or plan.syscall != "auto":
        return
    prediction = check_kernel(plan.kernel.path, root)
    if prediction.syscall != ops.AUTO:
        plan.syscall = next(name for name, syscall in ops.API_SYSCALLS.items() if syscall == prediction.syscall)
        plan.decisions.append(f"syscall: {prediction.syscall} ({prediction.reason})")


def prefer_signed(kernel: PlannedFile, root: str, decisions: list) -> PlannedFile:
    """`kernel`, or the signed flavour of the same release beside it when this kernel would refuse
    `kernel` and accept that one (Ubuntu's linux-signed: /boot/vmlinuz-R.efi.signed)."""
    import os

    from .plan.model import PlannedFile

    first = predict(kernel.path, root)
    if first.verdict != REFUSED:
        return kernel
    for suffix in SIGNED_SUFFIXES:  # the doctor's findings are this host's, whichever file: asked once
        path = kernel.path + suffix
        if os.path.isfile(path) and predict(path, root, first.support).accepted:
            decisions.append(
                f"kernel: {kernel.origin}{suffix}, the signed flavour of the same release: "
                f"this kernel accepts only signed kernels and {kernel.origin} is not signed by a key it trusts"
            )
            return PlannedFile(path, kernel.origin + suffix, kernel.check, temporary=kernel.temporary)
    return kernel
