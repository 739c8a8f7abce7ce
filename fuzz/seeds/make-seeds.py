#!/usr/bin/env python3
"""Regenerates the seed corpora under fuzz/seeds/<target>/ from engine/testdata.

The seeds are committed (a few small files per target), so CI does not run this;
rerun it after changing a capture or an input format in engine/src/proto/fuzz.rs,
engine/src/proto/rtmp/fuzz.rs or engine/src/proto/webrtc/fuzz.rs:

    python3 fuzz/seeds/make-seeds.py

Each fuzz body reads its knobs from its input (see those files); the seeds are laid
out accordingly.
"""

import hashlib
import hmac
import pathlib
import shutil
import struct
import zlib

HERE = pathlib.Path(__file__).resolve().parent
TESTDATA = HERE.parent.parent / "engine" / "testdata"
HANDSHAKE = 1 + 2 * 1536  # C0 + C1 + C2


def flv_tags(flv):
    """(type, timestamp_ms, body) of each tag of an FLV byte stream."""
    at = struct.unpack(">I", flv[5:9])[0] + 4
    while at + 11 <= len(flv):
        kind = flv[at] & 0x1F
        size = int.from_bytes(flv[at + 1 : at + 4], "big")
        ts = int.from_bytes(flv[at + 4 : at + 7], "big") | (flv[at + 7] << 24)
        body = flv[at + 11 : at + 11 + size]
        if len(body) < size:
            return
        yield kind, ts, body
        at += 11 + size + 4


def flv_head(flv, max_len):
    """The FLV header and whole tags, up to about max_len bytes."""
    end = struct.unpack(">I", flv[5:9])[0] + 4
    while end + 11 <= len(flv):
        size = int.from_bytes(flv[end + 1 : end + 4], "big")
        if end + 15 + size > max_len:
            break
        end += 15 + size
    return flv[:end]


def ts_mux_input(flags, flv, max_len):
    """The fuzz_ts_mux form: flags, then [kind][ts delta i16][len u16][body]."""
    out = bytearray([flags])
    last = 0
    for kind, ts, body in flv_tags(flv):
        if kind not in (8, 9) or len(out) > max_len:
            continue
        delta = max(-32768, min(32767, ts - last))
        last += delta
        body = body[:0xFFFF]
        out += struct.pack(">BhH", 1 if kind == 9 else 0, delta, len(body)) + body
    return bytes(out)


# STUN (RFC 8489 §5, §14) with the ICE attributes of RFC 8445 §16.1.
STUN_USERNAME, STUN_PRIORITY, STUN_USE_CANDIDATE = 0x0006, 0x0024, 0x0025
STUN_INTEGRITY, STUN_FINGERPRINT, STUN_ICE_CONTROLLING = 0x0008, 0x8028, 0x802A
# fuzz_stun's credentials: RFC 5769 §2.1's.
ICE_UFRAG, ICE_PWD = b"evtj", b"VOkJxbRl1RmTxUk/WvJxBt"
# RFC 5769 §2.1 "Sample Request" (accepted with those credentials) and §2.2
# "Sample IPv4 Response" (ignored: not a request).
RFC5769_REQUEST = bytes.fromhex(
    "000100582112a442b7e7a701bc34d686fa87dfae802200105354554e207465737420636c69656e74"
    "002400046e0001ff80290008932ff9b151263b36000600096576746a3a6836765920202000080014"
    "9aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a280280004e57a3bcf"
)
RFC5769_RESPONSE_V4 = bytes.fromhex(
    "0101003c2112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f722000200008"
    "0001a147e112a643000800142b91f599fd9e90c38c7489f92af9ba53f06be7d780280004c07d4c96"
)


def stun_message(msg_type, tid, attrs, key=None):
    """A STUN message: attributes (type, value), MESSAGE-INTEGRITY keyed with key
    (short-term: the password) if given, then FINGERPRINT."""
    body = b"".join(struct.pack(">HH", t, len(v)) + v + bytes(-len(v) % 4) for t, v in attrs)

    def header(extra):
        return struct.pack(">HHI", msg_type, len(body) + extra, 0x2112A442) + tid

    if key is not None:
        mac = hmac.new(key, header(24) + body, hashlib.sha1).digest()
        body += struct.pack(">HH", STUN_INTEGRITY, 20) + mac
    crc = zlib.crc32(header(8) + body) ^ 0x5354554E
    return header(8) + body + struct.pack(">HHI", STUN_FINGERPRINT, 4, crc)


def binding_request(tid, username, key, use_candidate, tie_breaker):
    """A Binding request as a controlling full agent (a browser) sends it."""
    attrs = [
        (STUN_USERNAME, username),
        (STUN_PRIORITY, struct.pack(">I", 0x6E001EFF)),
        (STUN_ICE_CONTROLLING, struct.pack(">Q", tie_breaker)),
    ]
    if use_candidate:
        attrs.append((STUN_USE_CANDIDATE, b""))
    return stun_message(0x0001, tid, attrs, key)


def rtp(pt, marker, seq, ts, ssrc, payload, ext=None):
    """An RTP packet (RFC 3550 §5.1); ext = (id, value): one one-byte element
    (RFC 8285 §4.2)."""
    head = struct.pack(">BBHII", 0x90 if ext else 0x80, pt | (0x80 if marker else 0), seq, ts, ssrc)
    if ext:
        element = bytes([ext[0] << 4 | len(ext[1]) - 1]) + ext[1]
        element += bytes(-len(element) % 4)
        head += struct.pack(">HH", 0xBEDE, len(element) // 4) + element
    return head + payload


def rtcp(count, pt, body):
    """One RTCP packet (RFC 3550 §6.4): count is RC/SC or FMT."""
    return struct.pack(">BBH", 0x80 | count, pt, len(body) // 4) + body


def rtp_rtcp_seeds():
    """fuzz_rtp_rtcp inputs: [knob][datagram] (knob bits 0-3: an extension id to
    carry over), and [0x80 | limits][RTX cache ops]."""
    media = 0x22222222
    video_payload = bytes([0x7C, 0x85, 0x88, 0x84])
    # Video with two CSRCs, a two-byte-header extension (id 5, "abc") and padding.
    video = struct.pack(">BBHII", 0xB2, 102, 7, 3000, media) + struct.pack(">II", 1, 2)
    video += struct.pack(">HH", 0x1000, 2) + bytes([5, 3]) + b"abc" + bytes(3)
    video += video_payload + bytes([0, 0, 0, 4])
    # The session's own RTCP: RR, PLI, FIR, NACK (10, 11, 13, 40, 65535), SR.
    block = struct.pack(">IIIIII", media, 3 << 24 | 70, 70000, 12, 0x12345678, 65536)
    session = rtcp(1, 201, struct.pack(">I", 1) + block)
    session += rtcp(1, 206, struct.pack(">II", 1, media))
    session += rtcp(4, 206, struct.pack(">IIII", 1, 0, media, 4 << 24))
    session += rtcp(1, 205, struct.pack(">IIHHHHHH", 1, media, 10, 0b101, 40, 0, 65535, 0))
    session += rtcp(0, 200, struct.pack(">IQIII", 5, 0xE9A60C0080000000, 90000, 10, 1000))
    # A browser's: SR, SDES CNAME, REMB (2 Mbit/s = 250000 << 3), BYE.
    browser = rtcp(0, 200, struct.pack(">IQIII", 9, 1, 2, 3, 4))
    browser += rtcp(1, 202, struct.pack(">I", 9) + bytes([1, 4]) + b"x1y2" + bytes(2))
    browser += rtcp(15, 206, struct.pack(">II", 9, 0) + b"REMB" + struct.pack(">II", 1 << 24 | 3 << 18 | 250000, media))
    browser += rtcp(1, 203, struct.pack(">I", 9))
    # RTX cache: 4 slots per SSRC, 2 SSRCs, 1 KiB; inserts, lookups, time, removal.
    ops = bytes([0x80 | 0x02 | 0x08 | 0x20])
    ops += b"".join(bytes([0x40, seq % 2, 0, seq]) for seq in range(6))
    ops += bytes([1, 0, 0, 4, 1, 1, 0, 5, 2, 0, 0x03, 0x20, 1, 0, 0, 4, 3, 1, 0, 0, 0xFC, 2, 0xFF, 0xFF])
    return {
        "opus-mid": b"\x03" + rtp(111, True, 65535, 960, 0x11111111, bytes.fromhex("780be4c136ecc58d"), (3, b"0")),
        "video-csrc-padding": b"\x05" + video,
        "rtx": b"\x04" + rtp(103, False, 1, 3000, 0x33333333, struct.pack(">H", 7) + video_payload, (4, b"1")),
        "rtcp-session": b"\x00" + session,
        "rtcp-browser": b"\x00" + browser,
        "rtx-cache-ops": ops,
    }


def main():
    publish = (TESTDATA / "rtmp" / "ffmpeg-publish.bin").read_bytes()
    play = (TESTDATA / "rtmp" / "ffmpeg-play.bin").read_bytes()
    small = (TESTDATA / "media" / "small.flv").read_bytes()
    bframes = (TESTDATA / "media" / "small_bframes.flv").read_bytes()
    tags = list(flv_tags(small))
    script = next(body for kind, _, body in tags if kind == 18)
    video_seq = next(body for kind, _, body in tags if kind == 9)
    audio_seq = next(body for kind, _, body in tags if kind == 8)
    key_frame = next(body for kind, _, body in tags if kind == 9 and body[1] == 1)
    audio_frame = [body for kind, _, body in tags if kind == 8][1]
    # The connect command: first message after the handshake, 12-byte type 0 header.
    connect = publish[HANDSHAKE + 12 : HANDSHAKE + 12 + 140]

    seeds = {
        # First byte: C0 (3) = all input at once.
        "rtmp_handshake": {
            "ffmpeg-c0c1": publish[: 1 + 1536],
            "ffmpeg-c0c1c2": publish[:HANDSHAKE],
        },
        # The chunk stream after the handshake.
        "rtmp_chunk": {
            "ffmpeg-publish": publish[HANDSHAKE : HANDSHAKE + 3000],
            "ffmpeg-play": play[HANDSHAKE:],
        },
        "amf0": {
            "connect-command": connect,
            "onmetadata": script,
        },
        # A flags byte (0x20: accept all, split 64+), then the client's chunk stream
        # (the body supplies the handshake itself).
        "rtmp_session": {
            "ffmpeg-publish": b"\x20" + publish[HANDSHAKE : HANDSHAKE + 3000],
            "ffmpeg-play": b"\x20" + play[HANDSHAKE:],
        },
        "http_request": {
            "ffmpeg-http-flv": b"GET /live/cam1.flv HTTP/1.1\r\nUser-Agent: Lavf/59.27.100\r\n"
            b"Accept: */*\r\nRange: bytes=0-\r\nConnection: close\r\n"
            b"Host: 127.0.0.1:8080\r\nIcy-MetaData: 1\r\n\r\n",
            "browser-ws-flv": b"GET /flv/cam1.flv?token=a%2Bb+c&x HTTP/1.1\r\n"
            b"Host: live.example:8080\r\nConnection: Upgrade\r\nPragma: no-cache\r\n"
            b"Upgrade: websocket\r\nOrigin: http://live.example\r\n"
            b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
            "hls-pipelined": b"GET /hls/cam1.m3u8 HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n"
            b"GET /hls/cam1/17.ts HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n",
            "control-drop": b"POST /control/drop/publisher?stream=cam1 HTTP/1.1\r\n"
            b"Authorization: Bearer x\r\nContent-Length: 0\r\n\r\n",
        },
        "flv_reader": {
            "small": flv_head(small, 6000),
            "small-bframes": flv_head(bframes, 3000),
        },
        "codec": {
            "avc-sequence-header": video_seq,
            "aac-sequence-header": audio_seq,
            "avc-key-frame": key_frame[:600],
            "aac-frame": audio_frame,
            "avc-config-record": video_seq[5:],
            # A run of [kind][len][body] tags for the MediaInfo updates.
            "media-info-run": bytes([1, len(video_seq)]) + video_seq
            + bytes([0, len(audio_seq)]) + audio_seq
            + bytes([1, 5, 0x27, 1, 0, 0, 0]),
        },
        # fuzz_ts_mux's own framing (see its doc comment).
        "ts_mux": {
            "small": ts_mux_input(0x01, small, 8000),
            "small-bframes-bounded": ts_mux_input(0xC9, bframes, 6000),
        },
        # fuzz_mp4 reads ts_mux's framing: a flags byte (its low 5 bits: the fragment
        # length in 100 ms units), then [kind][ts delta i16][len u16][body] (kind bit 7:
        # finish the file there).
        "mp4": {
            "small-2s-fragments": ts_mux_input(0x14, small, 8000),
            "small-bframes-1s-fragments": ts_mux_input(0x0A, bframes, 6000),
        },
        "websocket": {
            "rfc6455-hello": bytes.fromhex("818537fa213d7f9f4d5158"),
            "close-1000": bytes.fromhex("88820000000003e8"),
            "ping-then-binary-126": bytes.fromhex("898201020304696b")
            + bytes.fromhex("02fe012c09080706")
            + bytes(b ^ [9, 8, 7, 6][i % 4] for i, b in enumerate([7] * 300)),
        },
    }
    seeds["stun"] = {
        "rfc5769-request": RFC5769_REQUEST,
        "rfc5769-response-v4": RFC5769_RESPONSE_V4,
        "use-candidate": binding_request(bytes([1] * 12), ICE_UFRAG + b":cliU", ICE_PWD, True, 42),
        "unknown-ufrag": binding_request(bytes([2] * 12), b"zzzz:cliU", ICE_PWD, True, 7),
        "no-integrity": stun_message(0x0001, bytes([5] * 12), [(STUN_USERNAME, ICE_UFRAG + b":cliU")]),
    }
    seeds["rtp_rtcp"] = rtp_rtcp_seeds()
    # The captured offers as they are (the Chromium ones are over 4 KiB: left out).
    seeds["sdp"] = {
        name: (TESTDATA / "webrtc" / f"{name}_offer.sdp").read_bytes()
        for name in ["aiortc_publisher", "aiortc_subscriber", "firefox_publisher", "obs30_whip", "safari_subscriber"]
    }
    for target, files in seeds.items():
        folder = HERE / target
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        for name, data in files.items():
            (folder / name).write_bytes(data)


if __name__ == "__main__":
    main()
