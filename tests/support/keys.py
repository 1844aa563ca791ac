"""Signing keys and JSON Web Key Sets for the tests of the service's JWT checks (the FHIR API's bearer
tokens and the CDS client's JWT), and tokens made by hand the way an attacker would."""
from __future__ import annotations

import base64
import json

import jwt
from cryptography.hazmat.primitives import serialization


class Key:
    """A private key with its public JWK (kid, alg)."""

    def __init__(self, private, kid: str, alg: str) -> None:
        self.private, self.kid, self.alg = private, kid, alg

    def jwk(self) -> dict:
        public = jwt.algorithms.get_default_algorithms()[self.alg].to_jwk(self.private.public_key(),
                                                                         as_dict=True)
        return {**public, "kid": self.kid, "use": "sig", "alg": self.alg}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo)


def jwks(*ks: Key) -> dict:
    out = []
    for k in ks:
        jwk = k.jwk()
        jwk.pop("alg")  # one RSA key serves RS256 and RS384
        out.append(jwk)
    return {"keys": out}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict, payload: dict, signer=None) -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = signer(signing_input.encode()) if signer else b""
    return f"{signing_input}.{b64(signature)}"
