"""Reference oracle for `recovery-partnership` (shared/schemes/recovery-partnership/SPEC.md).

A direct, deliberately plain transcription of the SPEC; section numbers in the
comments refer to it.  Usage:

    python -m tests.oracles.recovery_partnership DATA_DIR AS_OF
"""

from __future__ import annotations

import datetime
import json
import sys
from decimal import Decimal

from .common import add_days, add_months, largest_remainder_split, money, parse_date, period, read_table

CONTRACT = "recovery-partnership"
FUNDERS = ["LCF", "LA", "PCC", "DWP"]  # §2 declared order
LEAD = "LA"  # §2 lead commissioner: takes LCF's overflow
OUTCOMES = ["free_from_dependence", "offending", "housing_secured", "employment_started"]  # §2 order
SUBSTANCES = ("opiate", "non_opiate", "alcohol")
EVENT_KINDS = ("treatment_completed", "re_presented", "proven_offence", "housing_secured", "employment_started")

REFERRAL_FIRST = datetime.date(2019, 4, 1)  # §4 referral period
REFERRAL_LAST = datetime.date(2021, 3, 31)
CLEAN_DAYS = 182  # §5.1: no re-presentation in C + 1 .. C + 182

# §6 tariffs
FFD_TARIFF = {"opiate": Decimal("2400.00"), "non_opiate": Decimal("1200.00"), "alcohol": Decimal("900.00")}
TARIFF = {"offending": Decimal("1000.00"), "housing_secured": Decimal("475.00"), "employment_started": Decimal("600.00")}

# §7 funder shares (percent), funders in declared order
SHARES = {
    "free_from_dependence": [("LCF", Decimal("20")), ("LA", Decimal("80"))],
    "offending": [("LCF", Decimal("20")), ("LA", Decimal("30")), ("PCC", Decimal("50"))],
    "housing_secured": [
        ("LCF", Decimal("20")),
        ("LA", Decimal("26.67")),
        ("PCC", Decimal("26.67")),
        ("DWP", Decimal("26.66")),
    ],
    "employment_started": [("LCF", Decimal("20")), ("LA", Decimal("40")), ("DWP", Decimal("40"))],
}

# §8 caps and ceilings
PARTICIPANT_CAP = Decimal("3550.00")
CONTRACT_CAP = Decimal("1200000.00")
LCF_CEILING = Decimal("200000.00")  # whole contract
PCC_CEILING = Decimal("40000.00")  # per financial year


def financial_year(d: datetime.date) -> str:
    """§4: 1 April .. 31 March, written like `2020-21`."""
    first_year = d.year if d.month >= 4 else d.year - 1
    return f"{first_year}-{(first_year + 1) % 100:02d}"


def load(data_dir):
    """§3: read and validate both tables."""
    participants = {}
    for row in read_table(data_dir, "participants"):
        pid = row["id"]
        if pid == "" or pid in participants:
            raise ValueError(f"participant id empty or not unique: {pid!r}")
        substance = row["substance"]
        if substance not in SUBSTANCES:
            raise ValueError(f"participant {pid}: substance {substance!r}")
        history = row["offending_history"]
        if history not in ("true", "false"):
            raise ValueError(f"participant {pid}: offending_history {history!r}")
        participants[pid] = {
            "referred_on": parse_date(row["referred_on"], "referred_on"),
            "substance": substance,
            "offending_history": history == "true",
            "events": {kind: [] for kind in EVENT_KINDS},
        }
    for row in read_table(data_dir, "events"):
        pid = row["participant_id"]
        if pid not in participants:
            raise ValueError(f"event for unknown participant {pid!r}")
        kind = row["kind"]
        if kind not in EVENT_KINDS:
            raise ValueError(f"event for {pid}: kind {kind!r}")
        participants[pid]["events"][kind].append(parse_date(row["date"], "date"))
    return participants


def participant_outcomes(p, t):
    """§5: the participant's payable outcomes, {outcome: achievement day}."""
    r = p["referred_on"]
    if not (REFERRAL_FIRST <= r <= REFERRAL_LAST):  # §4: ineligible earns nothing
        return {}
    window_last = add_days(add_months(r, 12), -1)  # §4: L = (R ⊕ 12) - 1
    ev = p["events"]
    achieved = {}

    # §5.1 free_from_dependence: earliest completion C >= R with no re-presentation in C+1 .. C+182
    for c in sorted(set(ev["treatment_completed"])):
        if c < r:
            continue
        blocked = any(add_days(c, 1) <= x <= add_days(c, CLEAN_DAYS) for x in ev["re_presented"])
        if not blocked:
            achieved["free_from_dependence"] = add_days(c, CLEAN_DAYS)
            break

    # §5.2 offending: history, and no proven offence dated R .. L; achieved on L
    if p["offending_history"]:
        if not any(r <= x <= window_last for x in ev["proven_offence"]):
            achieved["offending"] = window_last

    # §5.3 / §5.4: the first event of the kind dated R .. L
    for kind in ("housing_secured", "employment_started"):
        inside = [x for x in ev[kind] if r <= x <= window_last]
        if inside:
            achieved[kind] = min(inside)

    return {o: d for o, d in achieved.items() if d <= t}


def evaluate(data_dir, as_of: datetime.date) -> dict:
    t = as_of
    participants = load(data_dir)

    rows = []
    for pid, p in participants.items():
        for outcome, d in participant_outcomes(p, t).items():
            rows.append((d, pid, OUTCOMES.index(outcome), outcome))
    # §9: achievement day, participant id (plain string), contract order
    rows.sort(key=lambda r: (r[0], r[1], r[2]))

    allowed_participant = {}
    allowed_contract = Decimal("0")
    lcf_paid = Decimal("0")
    pcc_paid = {}  # financial year -> what PCC has paid in it
    pcc_years_named = set()
    payments = []
    for d, pid, _idx, outcome in rows:
        p = participants[pid]
        # 1. Tariff
        tariff = FFD_TARIFF[p["substance"]] if outcome == "free_from_dependence" else TARIFF[outcome]
        cuts = []
        # 2. Caps: participant cap, then contract cap, on allowed amounts
        a = min(tariff, max(Decimal("0"), PARTICIPANT_CAP - allowed_participant.get(pid, Decimal("0"))))
        if a < tariff:
            cuts.append({"cap": "participant_cap", "amount": money(tariff - a)})
        room = max(Decimal("0"), CONTRACT_CAP - allowed_contract)
        if a > room:
            cuts.append({"cap": "contract_cap", "amount": money(a - room)})
            a = room
        allowed_participant[pid] = allowed_participant.get(pid, Decimal("0")) + a
        allowed_contract += a
        # 3. Split between the funders of the outcome's row
        split = largest_remainder_split(a, SHARES[outcome])
        # 4. LCF ceiling (whole contract): what LCF cannot pay overflows to LA
        overflow = Decimal("0")
        if "LCF" in split:
            lcf_pays = min(split["LCF"], max(Decimal("0"), LCF_CEILING - lcf_paid))
            overflow = split["LCF"] - lcf_pays
            split["LCF"] = lcf_pays
            split[LEAD] += overflow
            lcf_paid += lcf_pays
        # 5. PCC ceiling (per financial year): what PCC cannot pay is unfunded
        unfunded = Decimal("0")
        if "PCC" in split:
            fy = financial_year(d)
            pcc_years_named.add(fy)
            used = pcc_paid.get(fy, Decimal("0"))
            pcc_pays = min(split["PCC"], max(Decimal("0"), PCC_CEILING - used))
            unfunded = split["PCC"] - pcc_pays
            split["PCC"] = pcc_pays
            pcc_paid[fy] = used + pcc_pays
            if unfunded > 0:
                cuts.append({"cap": "pcc_ceiling", "amount": money(unfunded)})
        # 6. Paid
        amount = a - unfunded
        assert amount == sum(split.values())
        payment = {
            "subject": pid,
            "outcome": outcome,
            "date": d.isoformat(),
            "amount": money(amount),
            "funders": {f: money(split[f]) for f in FUNDERS if f in split},
            "tariff": money(tariff),
            "unfunded": money(unfunded),
        }
        if cuts:
            payment["cuts"] = cuts
        if overflow > 0:
            payment["overflow"] = [{"from": "LCF", "to": LEAD, "amount": money(overflow)}]
        payments.append(payment)

    # §10 statement
    total = Decimal("0")
    unfunded_total = Decimal("0")
    by_outcome, by_period = {}, {}
    by_funder = {f: Decimal("0") for f in FUNDERS}
    for payment in payments:
        amt = Decimal(payment["amount"])
        total += amt
        unfunded_total += Decimal(payment["unfunded"])
        by_outcome[payment["outcome"]] = by_outcome.get(payment["outcome"], Decimal("0")) + amt
        month = period(datetime.date.fromisoformat(payment["date"]))
        by_period[month] = by_period.get(month, Decimal("0")) + amt
        for f, v in payment["funders"].items():
            by_funder[f] += Decimal(v)

    caps = {
        "contract_cap": {
            "limit": money(CONTRACT_CAP),
            "used": money(allowed_contract),
            "headroom": money(CONTRACT_CAP - allowed_contract),
        },
        "lcf_ceiling": {
            "limit": money(LCF_CEILING),
            "used": money(lcf_paid),
            "headroom": money(LCF_CEILING - lcf_paid),
        },
        "pcc_ceiling": {
            fy: {
                "limit": money(PCC_CEILING),
                "used": money(pcc_paid.get(fy, Decimal("0"))),
                "headroom": money(PCC_CEILING - pcc_paid.get(fy, Decimal("0"))),
            }
            for fy in sorted(pcc_years_named)
        },
    }

    return {
        "contract": CONTRACT,
        "as_of": t.isoformat(),
        "currency": "GBP",
        "total": money(total),
        "by_outcome": {o: money(by_outcome[o]) for o in OUTCOMES if o in by_outcome},
        "by_funder": {f: money(v) for f, v in by_funder.items()},
        "by_period": {m: money(by_period[m]) for m in sorted(by_period)},
        "unfunded": money(unfunded_total),
        "caps": caps,
        "payments": payments,
    }


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m tests.oracles.recovery_partnership DATA_DIR AS_OF", file=sys.stderr)
        return 2
    print(json.dumps(evaluate(argv[0], parse_date(argv[1], "as-of date")), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
