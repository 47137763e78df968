import base64
import subprocess
import sys


def test_secret_command_prints_a_fresh_secret() -> None:
    outputs = [
        subprocess.run(
            [sys.executable, "-m", "asgi_session", "secret"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for _ in range(2)
    ]
    assert len(base64.b64decode(outputs[0], validate=True)) == 32
    assert outputs[0] != outputs[1]


def test_no_command_is_a_usage_error() -> None:
    result = subprocess.run([sys.executable, "-m", "asgi_session"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "secret" in result.stderr
