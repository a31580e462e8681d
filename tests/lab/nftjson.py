#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Compare the kernel's view of choreod's table with the rows of its policy.

  nftjson.py NFT_JSON POLICY_TEXT

NFT_JSON is `nft -j list table inet NAME`; POLICY_TEXT is `choreod -p -c
FILE` (gw_policy's rendering). Both are put in one normal form -- objects
sorted, each chain's rules in their order -- and compared line by line.
nft 1.0.6 does not show a set's "dynamic" flag in JSON, so it is not
compared. Prints a summary (and the differences); exit 0 when the same.
"""
import json
import sys


def addr_len(a):
    return 128 if ":" in a else 32


def payload(x):
    p = x.get("payload", {})
    return p.get("protocol"), p.get("field")


def key_text(left):
    if "concat" in left:
        fields = [payload(x)[1] for x in left["concat"]]
        return " . ".join(fields)
    return payload(left)[1]


def rule_text(r):
    fam = None
    parts = []
    for e in r["expr"]:
        if "match" in e:
            m = e["match"]
            left, right = m["left"], m["right"]
            if "meta" in left and left["meta"].get("key") == "nfproto":
                fam = "ip" if right == "ipv4" else "ip6"
                continue
            if "concat" in left:
                fam = fam or left["concat"][0]["payload"]["protocol"]
            else:
                fam = fam or payload(left)[0]
            if isinstance(right, str) and right.startswith("@"):
                parts.append(f"{key_text(left)} {right}")
            elif isinstance(right, dict) and "prefix" in right:
                parts.append(f"{key_text(left)} {right['prefix']['addr']}/{right['prefix']['len']}")
            else:
                parts.append(f"{key_text(left)} {right}/{addr_len(str(right))}")
        elif "set" in e:
            s = e["set"]
            elem = s["elem"]["elem"]
            t = elem.get("timeout", 0)
            ms = int(t * 1000) if isinstance(t, (int, float)) else t
            limits = [x["limit"] for x in s.get("stmt", []) if "limit" in x]
            if limits and s["op"] == "add" and limits[0].get("per") == "day" \
                    and limits[0].get("rate") == 1:
                # a window's claims: a per-element limit, refilled daily
                parts.append(f"claim {key_text(elem['val'])} {s['set']} "
                             f"burst {limits[0].get('burst', 0)} timeout {ms}ms")
            else:
                parts.append(f"{s['op']} {key_text(elem['val'])} {s['set']} timeout {ms}ms")
        elif "counter" in e:
            parts.append(f"counter {e['counter']}")
        elif "dnat" in e:
            fam = fam or e["dnat"].get("family")
            parts.append(f"dnat to {e['dnat']['addr']}")
        elif "jump" in e:
            parts.append(f"jump {e['jump']['target']}")
        elif "accept" in e:
            parts.append("accept")
        elif "log" in e:
            # only the NFLOG form (a group, no syslog level) is ours
            g = e["log"]
            text = f"log prefix \"{g.get('prefix', '')}\" group {g.get('group', '?')}"
            if "snaplen" in g:
                text += f" snaplen {g['snaplen']}"
            extra = sorted(k for k in g if k not in ("prefix", "group", "snaplen"))
            if extra:
                text += " ?" + ",".join(extra)
            parts.append(text)
        else:
            parts.append("?" + json.dumps(e))
    return f"{fam} {r['chain']}: " + " ".join(parts)


def from_nft(path):
    with open(path) as f:
        items = json.load(f)["nftables"]
    out, rules = [], {}
    for it in items:
        if "table" in it:
            out.append(f"table {it['table']['family']} {it['table']['name']}")
        elif "set" in it:
            s = it["set"]
            fam = "ip" if (s["type"][0] if isinstance(s["type"], list) else s["type"]) == "ipv4_addr" else "ip6"
            line = f"set {s['name']} {fam}"
            if isinstance(s["type"], list):
                line += " pair"
            if "interval" in s.get("flags", []):
                line += " interval"
            if "size" in s:
                line += f" size {s['size']}"
            out.append(line)
        elif "counter" in it:
            out.append(f"counter {it['counter']['name']}")
        elif "chain" in it:
            c = it["chain"]
            base = c.get("hook") == "prerouting" and c.get("type") == "nat" and c.get("prio") == -100
            odd = "hook" in c and not base
            out.append(f"chain {c['name']}" + (" base" if base else "") + (" ?hook" if odd else ""))
        elif "rule" in it:
            rules.setdefault(it["rule"]["chain"], []).append(rule_text(it["rule"]))
    return out, rules


def from_policy(path):
    out, rules = [], {}
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("rule "):
                text = line[5:]
                chain = text.split(" ", 1)[1].split(":", 1)[0]
                rules.setdefault(chain, []).append(text)
            else:
                out.append(line.replace(" dynamic", ""))
    return out, rules


def normal(objs, rules):
    lines = sorted(objs)
    for chain in sorted(rules):
        lines += [f"rule {r}" for r in rules[chain]]
    return lines


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    kernel = normal(*from_nft(sys.argv[1]))
    policy = normal(*from_policy(sys.argv[2]))
    n_rules = sum(1 for l in kernel if l.startswith("rule "))
    if kernel == policy:
        print(f"same: {len(kernel)} lines, {n_rules} rules")
        return 0
    ks, ps = set(kernel), set(policy)
    print(f"different: kernel {len(kernel)} lines, policy {len(policy)} lines")
    for l in [l for l in policy if l not in ks][:10]:
        print(f"  only in the policy: {l}")
    for l in [l for l in kernel if l not in ps][:10]:
        print(f"  only in the kernel: {l}")
    if ks == ps:
        print("  (same lines, other order)")
    return 1


if __name__ == "__main__":
    sys.exit(main())
