"""An S3-compatible server (s3s-fs) on loopback for the bench scripts, and
the port helpers they share."""
import socket
import subprocess
import time

KEY, SECRET = "bench-key", "bench-secret-0123456789"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, seconds=30):
    t0 = time.time()
    while time.time() - t0 < seconds:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on port {port} after {seconds} s")


def start(server, root):
    """s3s-fs serving the directory `root` (a bucket a subdirectory), up: (process, endpoint)."""
    port = free_port()
    proc = subprocess.Popen([server, "--host", "127.0.0.1", "--port", str(port), "--access-key", KEY, "--secret-key", SECRET, str(root)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return proc, f"http://127.0.0.1:{port}"
