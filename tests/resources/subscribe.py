"""Resources through the official Python MCP SDK (tests/resources.rs runs it).

Usage: subscribe.py BIN DIR

Serves an HTTP target on 127.0.0.1 (200, then 500 on request), writes a
monitors file with endpoint `web` on it into DIR, starts `BIN --mcp-stdio`
and checks, with deadlines: the resources and the template are listed; the
monitor resource has desired and observed; after a subscription, the
endpoint going down sends notifications/resources/updated and the resource
reads `down`; adding a monitor to the file sends
notifications/resources/list_changed. Prints one line per step; exits 1 on
the first failure.
"""

import http.server
import json
import os
import sys
import threading

import anyio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

STEP = 30  # seconds any one step may take

status = {"code": 200}


class Target(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(status["code"])
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def monitors(port, extra=""):
    return (
        "endpoints:\n"
        f"  - name: web\n    url: http://127.0.0.1:{port}/\n    interval: 1s\n"
        "    failure_threshold: 1\n    recovery_threshold: 1\n" + extra
    )


def step(msg):
    print(msg, flush=True)


async def main(binary, folder):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Target)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    config = os.path.join(folder, "monitors.yaml")
    with open(config, "w") as f:
        f.write(monitors(port))

    notes = []
    seen = anyio.Event()

    async def on_message(message):
        m = getattr(message, "root", message)
        method = getattr(m, "method", None)
        if method:
            params = getattr(m, "params", None)
            notes.append((method, getattr(params, "uri", None)))
            seen.set()

    params = StdioServerParameters(
        command=binary,
        args=["--mcp-stdio"],
        env={
            "MAINTENANT_DB": os.path.join(folder, "db"),
            "MAINTENANT_CONFIG": config,
            "MAINTENANT_DOCKER": "false",
            "MAINTENANT_KUBERNETES": "false",
            "MAINTENANT_LOG": "warn",
            "PATH": os.environ.get("PATH", ""),
        },
    )
    uri = "maintenant://monitor/endpoint/web"
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write, message_handler=on_message) as s:
            init = await s.initialize()
            caps = init.capabilities.resources
            assert caps and caps.subscribe and caps.list_changed, caps
            step("initialized: resources with subscribe and listChanged")

            async def read_json(u):
                r = await s.read_resource(u)
                c = r.contents[0]
                assert c.mime_type == "application/json", c
                return json.loads(c.text)

            async def until(what, pred):
                with anyio.fail_after(STEP):
                    while True:
                        v = await pred()
                        if v:
                            return v
                        await anyio.sleep(0.2)

            listed = await until(
                "web listed",
                lambda: _listed(s, uri),
            )
            assert "maintenant://status" in listed, listed
            templates = await s.list_resource_templates()
            assert [t.uri_template for t in templates.resource_templates] == [
                "maintenant://monitor/{kind}/{name}"
            ], templates
            step(f"listed {len(listed)} resources and the template")

            async def up():
                row = await read_json(uri)
                return row if row["observed"]["status"] == "up" else None

            row = await until("web up", up)
            assert row["desired"]["spec"]["name"] == "web", row
            assert row["desired"]["origin"], row
            st = await read_json("maintenant://status")
            assert st["endpoints"]["by_state"] == {"up": 1}, st
            step("web is up; status resource counts it")

            await s.subscribe_resource(uri)
            notes.clear()
            status["code"] = 500
            with anyio.fail_after(STEP):
                while ("notifications/resources/updated", uri) not in notes:
                    await anyio.sleep(0.1)
            row = await read_json(uri)
            assert row["observed"]["status"] == "down", row
            st = await read_json("maintenant://status")
            assert st["endpoints"]["attention"] == [uri], st
            step("updated notification after web went down; it reads down")

            with open(config + ".tmp", "w") as f:
                f.write(
                    monitors(
                        port,
                        f"  - name: api\n    url: http://127.0.0.1:{port}/api\n    interval: 1h\n",
                    )
                )
            os.replace(config + ".tmp", config)
            with anyio.fail_after(STEP):
                while not any(m == "notifications/resources/list_changed" for m, _ in notes):
                    await anyio.sleep(0.1)
            listed = await _listed(s, "maintenant://monitor/endpoint/api")
            assert listed, "api is listed after list_changed"
            step("list_changed notification after api was declared")

            await s.unsubscribe_resource(uri)
            step("unsubscribed")

            # Prompts, built from the same live state (web is down).
            names = [p.name for p in (await s.list_prompts()).prompts]
            assert names == [
                "triage",
                "what_changed",
                "certificates_to_renew",
                "prepare_maintenance",
            ], names

            async def text(name, args=None):
                r = await s.get_prompt(name, args or {})
                return r.messages[0].content.text

            t = await text("triage")
            assert uri in t and "endpoint_down" in t, t
            t = await text("what_changed", {"hours": "1"})
            assert "last 1 hours" in t and "endpoint_down" in t, t
            t = await text("certificates_to_renew", {"days": "30"})
            assert "within 30 days" in t, t
            t = await text("prepare_maintenance", {"monitor": "WEB", "when": "tonight"})
            assert '"monitors": ["endpoint/web"]' in t and '"status":"down"' in t, t
            try:
                await s.get_prompt("prepare_maintenance", {"monitor": "wbe"})
                raise AssertionError("a typo is refused")
            except AssertionError:
                raise
            except Exception as e:  # the server's "did you mean"
                assert "did you mean" in str(e), e
            step("prompts answer from live data")

            from mcp import types

            ref = types.PromptReference(type="ref/prompt", name="prepare_maintenance")
            c = await s.complete(ref, {"name": "monitor", "value": "a"})
            assert c.completion.values == ["endpoint/api"], c
            c = await s.complete(ref, {"name": "monitor", "value": ""})
            assert c.completion.values == ["endpoint/api", "endpoint/web"], c
            step("completions for the monitor argument")
    server.shutdown()


async def _listed(s, uri):
    r = await s.list_resources()
    uris = [str(x.uri) for x in r.resources]
    return uris if uri in uris else None


if __name__ == "__main__":
    try:
        anyio.run(main, sys.argv[1], sys.argv[2])
    except BaseException as e:  # noqa: BLE001 - report any failure as the exit code
        print(f"FAILED: {type(e).__name__}: {e!r}", flush=True)
        sys.exit(1)
