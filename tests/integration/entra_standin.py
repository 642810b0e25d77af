"""A stand-in for Microsoft Entra ID and the Azure managed identity endpoint.

No real identity provider can run here, so this answers the two kinds of
token requests `azure_identity` makes, and nothing else:

- over HTTPS (the test CA's server certificate), Entra ID's token endpoint
  `POST /{tenant}/oauth2/v2.0/token` for client credentials: a client secret
  or a client assertion (workload identity's federated token);
- over HTTP, the App Service / Container Apps identity endpoint
  (`IDENTITY_ENDPOINT`, with the `X-IDENTITY-HEADER` secret).

It checks what a real one would (tenant, client id, scope, secret or
assertion, identity header) and answers with a JWT that Azurite's
`--oauth basic` accepts: issuer `https://sts.windows.net/{tenant}/`,
audience `--audience`, valid for an hour. It is not signed: Azurite in basic
mode does not check signatures. Every request is appended to `--log` as a
JSON line. It prints "HTTPS_PORT HTTP_PORT" once both listen.

    python3 entra_standin.py --tls-dir DIR --log FILE --tenant T --client C
        [--secret S] [--assertion-file F] [--identity-header H]
        [--audience A] [--expires-in SECONDS]
"""

import argparse
import base64
import http.server
import json
import ssl
import sys
import threading
import time
import urllib.parse


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(args):
    now = int(time.time())
    header = {"alg": "RS256", "typ": "JWT", "kid": "stand-in"}
    claims = {
        "aud": args.audience,
        "iss": "https://sts.windows.net/%s/" % args.tenant,
        "iat": now - 60,
        "nbf": now - 60,
        "exp": now + args.expires_in,
        "appid": args.client,
        "tid": args.tenant,
        "oid": "00000000-0000-0000-0000-00000000b0b0",
        "ver": "1.0",
    }
    parts = [b64(json.dumps(header).encode()), b64(json.dumps(claims).encode())]
    return ".".join(parts + [b64(b"stand-in, not signed")])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tls-dir", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--tenant", required=True)
    p.add_argument("--client", required=True)
    p.add_argument("--secret")
    p.add_argument("--assertion-file")
    p.add_argument("--identity-header")
    p.add_argument("--audience", default="https://storage.azure.com")
    p.add_argument("--expires-in", type=int, default=3600)
    args = p.parse_args()
    lock = threading.Lock()

    def log(entry):
        with lock, open(args.log, "a") as f:
            f.write(json.dumps(entry) + "\n")

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def answer(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def refuse(self, status, code, text):
            self.answer(
                status,
                {
                    "error": "invalid_client" if status == 401 else "invalid_request",
                    "error_description": "AADSTS%d: %s" % (code, text),
                    "error_codes": [code],
                },
            )

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
            path = urllib.parse.urlparse(self.path).path
            log({"kind": "entra", "path": path, "form": form})
            if path != "/%s/oauth2/v2.0/token" % args.tenant:
                return self.refuse(400, 90002, "Tenant not found.")
            if form.get("grant_type") != "client_credentials":
                return self.refuse(400, 70003, "unsupported grant type")
            if form.get("client_id") != args.client:
                return self.refuse(400, 700016, "Application not found in the directory.")
            if form.get("scope") != "https://storage.azure.com/.default":
                return self.refuse(400, 70011, "The provided value for scope is not valid.")
            if "client_secret" in form:
                if args.secret is None or form["client_secret"] != args.secret:
                    return self.refuse(401, 7000215, "Invalid client secret provided.")
            elif "client_assertion" in form:
                expected = None
                if args.assertion_file:
                    with open(args.assertion_file) as f:
                        expected = f.read().strip()
                if (
                    form.get("client_assertion_type")
                    != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
                    or expected is None
                    or form["client_assertion"] != expected
                ):
                    return self.refuse(401, 700024, "Client assertion is not within its valid time range.")
            else:
                return self.refuse(401, 7000218, "The request body must contain client_assertion or client_secret.")
            self.answer(
                200,
                {
                    "token_type": "Bearer",
                    "expires_in": args.expires_in,
                    "ext_expires_in": args.expires_in,
                    "access_token": jwt(args),
                },
            )

        def do_GET(self):
            url = urllib.parse.urlparse(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            header = self.headers.get("X-IDENTITY-HEADER")
            log({"kind": "identity", "path": url.path, "query": query, "header": header})
            if args.identity_header is None or header != args.identity_header:
                return self.answer(401, {"error": "unauthorized", "error_description": "bad X-IDENTITY-HEADER"})
            if query.get("resource") != "https://storage.azure.com":
                return self.answer(400, {"error": "invalid_resource"})
            self.answer(
                200,
                {
                    "access_token": jwt(args),
                    "expires_on": str(int(time.time()) + args.expires_in),
                    "resource": query["resource"],
                    "token_type": "Bearer",
                    "client_id": query.get("client_id", args.client),
                },
            )

    https = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.tls_dir + "/server.pem", args.tls_dir + "/server.key")
    https.socket = context.wrap_socket(https.socket, server_side=True)
    plain = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    for server in (https, plain):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print(https.server_address[1], plain.server_address[1], flush=True)
    # Ends when the test closes stdin (or dies).
    sys.stdin.read()


if __name__ == "__main__":
    main()
