"""One table of base URLs, judged alike by the gateway's network guard and the LLMProvider CEL rule.

``True``: the host is not a public address (private, loopback, link-local, cluster-internal,
metadata, or an unusual spelling that clients still resolve); ``False``: public.
"""

from __future__ import annotations

BASE_URLS: dict[str, bool] = {
    # Plain private, loopback, link-local, CGNAT, multicast IPv4.
    "http://127.0.0.1:8080/v1": True,
    "http://10.0.0.5": True,
    "http://192.168.1.1:80": True,
    "http://172.16.0.1": True,
    "http://172.31.255.255/x": True,
    "http://169.254.169.254/latest/meta-data": True,
    "http://100.64.0.1/": True,
    "http://0.0.0.0": True,
    "http://224.0.0.1": True,
    "http://255.255.255.255": True,
    "http://user@127.0.0.1/": True,
    "http://a@b@127.0.0.1/": True,
    # The same addresses in the other spellings HTTP clients accept.
    "http://0x7f.0.0.1": True,
    "http://0xa9.0xfe.0xa9.0xfe/latest/meta-data": True,
    "http://0177.0.0.1": True,
    "http://127.1": True,
    "http://2130706433/": True,
    "http://0x7f000001/": True,
    "http://0": True,
    "http://127.0.0.1./": True,
    # Public addresses in unusual spellings, and hosts that only look like IPv4.
    "http://0x08.0x08.0x08.0x08": True,
    "http://8.8.2056": True,
    "http://8.8.8.08": True,
    "http://x.y.z.99": True,
    # IPv6: loopback in any spelling, mapped IPv4, unique/link-local, 6to4, zones.
    "http://[::1]:8080": True,
    "http://[0:0:0:0:0:0:0:1]/": True,
    "http://[0000::1]": True,
    "http://[::]": True,
    "http://[::ffff:127.0.0.1]/": True,
    "http://[::ffff:7f00:1]": True,
    "http://[::ffff:a9fe:a9fe]/": True,
    "http://[fe80::1]/": True,
    "http://[fd00::1]/": True,
    "http://[2002:7f00:1::]/": True,
    "http://[fe80::1%25eth0]/": True,
    # Names no public resolver answers: local, cluster-internal, metadata.
    "http://localhost/v1": True,
    "http://LOCALHOST.": True,
    "http://metadata": True,
    "http://metadata.google.internal/computeMetadata/v1": True,
    "http://kubernetes": True,
    "http://kubernetes.default": True,
    "http://kubernetes.default.svc": True,
    "http://my-llm.ns.svc:8000": True,
    "http://my-llm.ns.svc.cluster.local": True,
    "http://vllm.llm-serving:8000/v1": True,
    "http://printer.home.arpa": True,
    # Malformed or escaped hosts, on which clients disagree.
    "http://.example.com/": True,
    "http://api..example.com/": True,
    "http://%31%32%37.0.0.1/": True,
    "http://127.0.0.1\\@api.openai.com/": True,
    # Public.
    "https://api.openai.com/v1": False,
    "https://API.OpenAI.com./v1": False,
    "https://openrouter.ai/api/v1": False,
    "https://generativelanguage.googleapis.com/v1beta": False,
    "https://172.32.0.1": False,
    "https://8.8.8.8/": False,
    "http://api.10.example.com": False,
    "https://my-host.example.com:8443/v1": False,
    "https://user:pw@api.example.com/v1": False,
    "https://api.example.com/v1/models.internal": False,
    "https://xn--80ak6aa92e.xn--p1ai/": False,
    "https://[2001:db8::1]/": False,
    "https://[2606:4700::1111]:443/v1": False,
}
