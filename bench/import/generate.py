#!/usr/bin/env python3
"""Deterministic statement files for bench/import: an OFX 1.02 (SGML) file and a CSV export
of the same transactions, and their halves (every second transaction) to pre-load an account.

    generate.py FORMAT COUNT [--half] [--memo-bytes N] > FILE     (FORMAT: ofx, csv or copy)

`copy` writes the same rows as `COPY feed_transaction (...) FROM STDIN` text for the baseline,
with ACCOUNT, CONNECTION and a fitid prefix taken from the environment.

Transaction i is the same in every file: its day, its amount (unique within the day, so the
"same day and amount" rule holds no row for a person) and its payee, so the half file's rows
are exactly those the full file holds at even positions. No randomness: the same arguments
always give the same bytes.
"""
import datetime
import sys

PAYEES = ["STARBUCKS STORE 1234", "CON ED OF NY", "ACME CORP PAYROLL", "AMAZON MKTPLACE PMTS",
          "SHELL OIL 5744", "WHOLE FOODS MARKET", "NETFLIX.COM", "UBER TRIP HELP.UBER.COM",
          "CITY OF NEW YORK PARKING", "TRADER JOE'S #552"]
PER_DAY = 40
FIRST = datetime.date(2000, 1, 1)


def transaction(i):
    day = FIRST + datetime.timedelta(days=i // PER_DAY)
    cents = -(100 + (i % PER_DAY) * 137 + (i * 7919) % 97 * 10_000)
    if i % 10 == 3:
        cents = -cents
    return day, cents, PAYEES[i % len(PAYEES)]


def amount(cents):
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def rows(count, half):
    return (i for i in range(count) if not half or i % 2 == 0)


def ofx(count, half, memo_bytes, out):
    last = transaction(count - 1)[0]
    out.write("OFXHEADER:100\nDATA:OFXSGML\nVERSION:102\nSECURITY:NONE\nENCODING:USASCII\nCHARSET:1252\n"
              "COMPRESSION:NONE\nOLDFILEUID:NONE\nNEWFILEUID:NONE\n\n<OFX>\n<SIGNONMSGSRSV1>\n<SONRS>\n"
              "<STATUS>\n<CODE>0\n<SEVERITY>INFO\n</STATUS>\n<DTSERVER>20260101120000\n<LANGUAGE>ENG\n"
              "</SONRS>\n</SIGNONMSGSRSV1>\n<BANKMSGSRSV1>\n<STMTTRNRS>\n<TRNUID>1\n<STATUS>\n<CODE>0\n"
              "<SEVERITY>INFO\n</STATUS>\n<STMTRS>\n<CURDEF>USD\n<BANKACCTFROM>\n<BANKID>021000021\n"
              "<ACCTID>BENCH-0001\n<ACCTTYPE>CHECKING\n</BANKACCTFROM>\n<BANKTRANLIST>\n"
              f"<DTSTART>{FIRST:%Y%m%d}\n<DTEND>{last:%Y%m%d}\n")
    for i in rows(count, half):
        day, cents, payee = transaction(i)
        memo = f"REF {i:09d}" + (" " + "X" * (memo_bytes - 15) if memo_bytes > 14 else "")
        out.write(f"<STMTTRN>\n<TRNTYPE>{'CREDIT' if cents > 0 else 'DEBIT'}\n<DTPOSTED>{day:%Y%m%d}\n"
                  f"<TRNAMT>{amount(cents)}\n<FITID>B{i:09d}\n<NAME>{payee}\n<MEMO>{memo}\n</STMTTRN>\n")
    out.write("</BANKTRANLIST>\n<LEDGERBAL>\n<BALAMT>1000.00\n"
              f"<DTASOF>{last:%Y%m%d}\n</LEDGERBAL>\n</STMTRS>\n</STMTTRNRS>\n</BANKMSGSRSV1>\n</OFX>\n")


def csv(count, half, memo_bytes, out):
    out.write("Posting Date,Description,Amount,Memo\n")
    for i in rows(count, half):
        day, cents, payee = transaction(i)
        memo = f"REF {i:09d}" + (" " + "X" * (memo_bytes - 15) if memo_bytes > 14 else "")
        out.write(f"{day:%Y-%m-%d},\"{payee}\",{amount(cents)},{memo}\n")


def copy(count, half, memo_bytes, out):
    import os
    import uuid
    account, connection = os.environ["ACCOUNT"], os.environ["CONNECTION"]
    prefix, seq = os.environ.get("FITID_PREFIX", "copy-"), 10_000_000
    for i in rows(count, half):
        day, cents, payee = transaction(i)
        memo = f"REF {i:09d}" + (" " + "X" * (memo_bytes - 15) if memo_bytes > 14 else "")
        row_id = uuid.uuid5(uuid.NAMESPACE_OID, f"{prefix}{i}")
        key = f"{day}|{amount(cents)}|{''.join(c for c in payee.lower() if c.isalnum())}|0"
        out.write(f"{row_id}\t{account}\t{connection}\t{prefix}B{i:09d}\t{key}\t{day}T12:00:00Z\t{amount(cents)}\tUSD\t"
                  f"{payee}\t{memo}\timport\t{seq + i}\t{seq + i}\n")


def main():
    args = sys.argv[1:]
    half = "--half" in args
    memo_bytes = 14
    if "--memo-bytes" in args:
        memo_bytes = int(args[args.index("--memo-bytes") + 1])
    kind, count = args[0], int(args[1])
    {"ofx": ofx, "csv": csv, "copy": copy}[kind](count, half, memo_bytes, sys.stdout)


if __name__ == "__main__":
    main()
