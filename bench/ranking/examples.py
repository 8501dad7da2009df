"""Writes catalog/examples.toml, the labelled questions search learns from: the studied splits of
catalog/eval/questions.toml, never the held-out ones (fresh11, fresh12).

    python3 bench/ranking/examples.py
"""
import json
import tomllib

STUDIED = {"dev", "holdout", "fresh", "blind", "fresh8", "fresh9", "fresh10"}
HEADER = """\
# Labelled questions search learns from (`src/catalog/ranking/examples.rs`): each question with the
# entry or entries that should come first. They are the studied splits of the search evaluation
# (`eval/questions.toml`: dev, holdout, fresh, blind, fresh8, fresh9, fresh10) copied as they are;
# a test checks that every example is such a question with the same expected entries, and that no
# question of a held-out split (fresh11, fresh12) is here. Never add a held-out question: it would
# stop measuring anything. Regenerate with `python3 bench/ranking/examples.py`.
"""

questions = tomllib.load(open("catalog/eval/questions.toml", "rb"))["question"]
out = [HEADER]
for question in questions:
    if question["set"] in STUDIED:
        expect = ", ".join(map(str, question["expect"]))
        out.append(f"[[example]]\nq = {json.dumps(question['q'], ensure_ascii=False)}\nexpect = [{expect}]\n")
open("catalog/examples.toml", "w").write("\n".join(out))
