"""The service's OpenID Connect provider, checked by libraries that are not the service's own.

Authlib's OAuth 2.0 client runs the flows a relying party such as Genesys runs (discovery, the
authorization redirect with PKCE, the code grant with either client authentication, refresh,
userinfo); joserfc validates every ID token against the published JWKS. Each check prints one
line; the first failure ends the run with exit status 1.

Settings come from the environment (`cargo xtask oidc` sets them):
  OIDC_ISSUER          the provider's issuer, which is also where it answers
  OIDC_CLIENT_ID       the relying party's client id
  OIDC_CLIENT_SECRET   its secret
  OIDC_REDIRECT_URI    one of the provider's redirect URIs
  PAGE_ORIGIN          an origin the service allows (the auth-code route checks it)
  SITE_KEY_FILE        the HS256 key that signs the site's sessions
  SITE_ISSUER          the site sessions' issuer
  SITE_AUDIENCE        their audience
"""

import base64
import json
import os
import secrets
import sys
import time
from urllib.parse import parse_qs, urlsplit

import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, OctKey
from joserfc.jwt import JWTClaimsRegistry

ENV = os.environ
ISSUER = ENV["OIDC_ISSUER"].rstrip("/")
CLIENT_ID = ENV["OIDC_CLIENT_ID"]
CLIENT_SECRET = ENV["OIDC_CLIENT_SECRET"]
REDIRECT_URI = ENV["OIDC_REDIRECT_URI"]
PAGE_ORIGIN = ENV["PAGE_ORIGIN"]
SCOPE = "openid profile email offline_access"
TIMEOUT = 10


class Failed(Exception):
    pass


def expect(condition, what):
    if not condition:
        raise Failed(what)


def site_session(subject, email):
    """A site session as the site's login would sign it."""
    with open(ENV["SITE_KEY_FILE"], "rb") as f:
        key = OctKey.import_key(f.read().strip())
    now = int(time.time())
    claims = {
        "iss": ENV["SITE_ISSUER"],
        "aud": ENV["SITE_AUDIENCE"],
        "sub": subject,
        "email": email,
        "name": "Conformance Visitor",
        "iat": now,
        "exp": now + 300,
    }
    return jwt.encode({"alg": "HS256", "typ": "JWT"}, claims, key)


def discover():
    response = requests.get(f"{ISSUER}/.well-known/openid-configuration", timeout=TIMEOUT)
    expect(response.status_code == 200, f"discovery answered {response.status_code}")
    document = response.json()
    expect(document["issuer"] == ISSUER, f"discovery names issuer {document['issuer']!r}, not {ISSUER!r}")
    for endpoint in ("authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint"):
        expect(document[endpoint].startswith(ISSUER + "/"), f"{endpoint} {document[endpoint]!r} is not under the issuer")
    expect("code" in document["response_types_supported"], "response type code is not supported")
    expect("RS256" in document["id_token_signing_alg_values_supported"], "RS256 is not an ID token algorithm")
    expect("S256" in document["code_challenge_methods_supported"], "PKCE S256 is not supported")
    methods = document["token_endpoint_auth_methods_supported"]
    expect({"client_secret_basic", "client_secret_post"} <= set(methods), f"client authentication {methods}")
    return document


def key_set(document):
    response = requests.get(document["jwks_uri"], timeout=TIMEOUT)
    expect(response.status_code == 200, f"JWKS answered {response.status_code}")
    keys = response.json()
    expect(all("d" not in k and "p" not in k for k in keys["keys"]), "the JWKS publishes private key material")
    return KeySet.import_key_set(keys)


def validate_id_token(id_token, keys, nonce, subject):
    """Signature against the JWKS, then every claim a relying party checks (OIDC Core 3.1.3.7)."""
    token = jwt.decode(id_token, keys, algorithms=["RS256"])
    expect(token.header.get("kid"), "the ID token's header names no kid")
    registry = JWTClaimsRegistry(
        leeway=5,
        iss={"essential": True, "value": ISSUER},
        aud={"essential": True, "value": CLIENT_ID},
        sub={"essential": True, "value": subject},
        exp={"essential": True},
        iat={"essential": True},
        nonce={"essential": True, "value": nonce},
    )
    registry.validate(token.claims)
    audience = token.claims["aud"]
    if isinstance(audience, list) and len(audience) > 1:
        expect(token.claims.get("azp") == CLIENT_ID, "several audiences and azp is not the client")
    return token.claims


def tampered(compact):
    """`compact` with one bit of its signature flipped."""
    head, body, signature = compact.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[0] ^= 1
    return ".".join([head, body, base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()])


def client(auth_method):
    return OAuth2Session(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        token_endpoint_auth_method=auth_method,
        scope=SCOPE,
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
        default_timeout=TIMEOUT,
    )


def authorize(document, session_jwt, **extra):
    """The authorization request through Authlib; the redirect it answers, not followed."""
    rp = client("client_secret_basic")
    verifier = generate_token(48)
    nonce = generate_token(20)
    url, state = rp.create_authorization_url(
        document["authorization_endpoint"], code_verifier=verifier, nonce=nonce, **extra
    )
    response = requests.get(
        url, headers={"Authorization": f"Bearer {session_jwt}"}, allow_redirects=False, timeout=TIMEOUT
    )
    expect(response.status_code in (302, 303), f"authorize answered {response.status_code}")
    return rp, response.headers["Location"], verifier, nonce, state


def check_authorization_code_flow(document, keys, session_jwt, subject):
    rp, location, verifier, nonce, state = authorize(document, session_jwt)
    expect(location.startswith(REDIRECT_URI), "authorize redirected somewhere else")
    query = parse_qs(urlsplit(location).query)
    expect(query.get("state") == [state], "the redirect lost the state")
    expect("code" in query, f"the redirect carries no code: {sorted(query)}")
    token = rp.fetch_token(document["token_endpoint"], authorization_response=location, code_verifier=verifier)
    expect(token["token_type"].lower() == "bearer", f"token_type {token['token_type']!r}")
    expect(token.get("refresh_token"), "offline_access granted no refresh token")
    claims = validate_id_token(token["id_token"], keys, nonce, subject)
    print("  ok  authorization code + PKCE, client_secret_basic: ID token valid against the JWKS")

    # The same code again: a relying party's retry must not get a second set of tokens.
    try:
        rp.fetch_token(document["token_endpoint"], authorization_response=location, code_verifier=verifier)
    except OAuthError as e:
        expect(e.error == "invalid_grant", f"a reused code failed with {e.error!r}, not invalid_grant")
    else:
        raise Failed("a reused code was redeemed twice")
    print("  ok  a redeemed code is refused the second time (invalid_grant)")

    info = rp.get(document["userinfo_endpoint"])
    expect(info.status_code == 200, f"userinfo answered {info.status_code}")
    expect(info.json()["sub"] == claims["sub"], "userinfo names another subject than the ID token")
    print("  ok  userinfo with the access token names the ID token's subject")

    first_refresh = token["refresh_token"]
    refreshed = rp.refresh_token(document["token_endpoint"], refresh_token=first_refresh)
    expect(refreshed.get("access_token") and refreshed["access_token"] != token["access_token"], "refresh gave no new access token")
    expect(refreshed.get("refresh_token") and refreshed["refresh_token"] != first_refresh, "refresh did not rotate the refresh token")
    if "id_token" in refreshed:
        jwt.decode(refreshed["id_token"], keys, algorithms=["RS256"])
    print("  ok  refresh_token grant answers new tokens and rotates the refresh token")

    try:
        rp.refresh_token(document["token_endpoint"], refresh_token=first_refresh)
    except OAuthError as e:
        expect(e.error == "invalid_grant", f"a spent refresh token failed with {e.error!r}")
    else:
        raise Failed("a spent refresh token was accepted")
    print("  ok  a spent refresh token is refused (invalid_grant)")

    # A tampered signature must fail the same validation: the check above is not vacuous.
    try:
        validate_id_token(tampered(token["id_token"]), keys, nonce, subject)
    except JoseError:
        pass
    else:
        raise Failed("an ID token with a tampered signature validated")
    print("  ok  the same validation refuses a tampered ID token")


def check_refusals(document, session_jwt):
    rp, location, verifier, _, _ = authorize(document, session_jwt)
    wrong_secret = OAuth2Session(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET + "x",
        token_endpoint_auth_method="client_secret_basic",
        redirect_uri=REDIRECT_URI,
        default_timeout=TIMEOUT,
    )
    try:
        wrong_secret.fetch_token(document["token_endpoint"], authorization_response=location, code_verifier=verifier)
    except OAuthError as e:
        expect(e.error == "invalid_client", f"a wrong secret failed with {e.error!r}, not invalid_client")
    else:
        raise Failed("a wrong client secret redeemed a code")
    try:
        rp.fetch_token(document["token_endpoint"], authorization_response=location, code_verifier=generate_token(48))
    except OAuthError as e:
        expect(e.error == "invalid_grant", f"a wrong PKCE verifier failed with {e.error!r}")
    else:
        raise Failed("a wrong PKCE verifier redeemed a code")
    print("  ok  a wrong client secret (invalid_client) and a wrong PKCE verifier (invalid_grant) are refused")

    _, location, _, _, state = authorize(document, session_jwt, prompt="none")
    expect("code" in parse_qs(urlsplit(location).query), "a signed-in visitor with prompt=none got no code")
    _, anonymous, _, _, state = authorize(document, "not-a-session", prompt="none")
    query = parse_qs(urlsplit(anonymous).query)
    expect(query.get("error") == ["login_required"] and "code" not in query, f"prompt=none with a bad session: {query}")
    expect(query.get("state") == [state], "the error redirect lost the state")
    print("  ok  prompt=none: a code when signed in, login_required with the state otherwise")


def check_messenger_code(document, keys, session_jwt, subject):
    """The stock Messenger's path: a code from the service's auth-code route, redeemed with the
    verifier and nonce it came with, the client authenticating in the form body."""
    response = requests.post(
        f"{ISSUER}/api/webmessaging/auth-code",
        headers={"Authorization": f"Bearer {session_jwt}", "Origin": PAGE_ORIGIN},
        timeout=TIMEOUT,
    )
    expect(response.status_code == 200, f"auth-code answered {response.status_code}: {response.text[:200]}")
    minted = response.json()
    rp = OAuth2Session(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        token_endpoint_auth_method="client_secret_post",
        redirect_uri=minted["redirectUri"],
        default_timeout=TIMEOUT,
    )
    token = rp.fetch_token(
        document["token_endpoint"],
        grant_type="authorization_code",
        code=minted["authCode"],
        code_verifier=minted["codeVerifier"],
    )
    validate_id_token(token["id_token"], keys, minted["nonce"], subject)
    print("  ok  a code from /api/webmessaging/auth-code, client_secret_post: ID token valid against the JWKS")


def main():
    subject = "conformance-" + secrets.token_hex(4)
    session_jwt = site_session(subject, f"{subject}@example.com")
    print(f"OpenID Connect provider {ISSUER}, checked with Authlib and joserfc")
    document = discover()
    print("  ok  discovery: issuer, endpoints, code + PKCE S256 + RS256 + both client authentications")
    keys = key_set(document)
    print("  ok  JWKS: public keys only")
    check_authorization_code_flow(document, keys, session_jwt, subject)
    check_refusals(document, session_jwt)
    check_messenger_code(document, keys, session_jwt, subject)
    print("every check passed")


if __name__ == "__main__":
    try:
        main()
    except (Failed, OAuthError, JoseError, KeyError, json.JSONDecodeError, requests.RequestException) as e:
        print(f"FAILED: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
