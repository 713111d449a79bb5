"""The hostile-input catalogue: what an attacker or a careless user sends, and what must happen.

Each case is exercised by exactly one test of `tests/hostile/` (the test's parameter id is the
case id); each asserts the clear message, the status or exit code, and that nothing half-written
remains (rows, media files, temporary folders). SECURITY.md carries the table `security_table()`
renders, between the markers below; `test_catalogue.py` fails when they differ.

Regenerate the SECURITY.md table: `python -m tests.hostile.catalogue`.
"""

from __future__ import annotations

from dataclasses import dataclass

BEGIN = "<!-- hostile-catalogue:begin -->"
END = "<!-- hostile-catalogue:end -->"


@dataclass(frozen=True)
class Case:
    id: str
    door: str
    sends: str
    expect: str


CASES: tuple[Case, ...] = (
    # --- set import: zip -------------------------------------------------------------------
    Case(
        "zip-many-small-zeros",
        "set import (zip)",
        "300 entries × 1 MiB of zeros (≈340 KB zip)",
        "exit 1, 'expands …:1 (limit 20:1, DATASET_ZIP_MAX_RATIO)'; nothing extracted",
    ),
    Case(
        "zip-too-many-entries",
        "set import (zip)",
        "more entries than DATASET_ZIP_MAX_ENTRIES",
        "exit 1, 'N entries (limit …)'",
    ),
    Case(
        "zip-total-too-large",
        "set import (zip)",
        "uncompressed total over DATASET_ZIP_MAX_BYTES",
        "exit 1, 'MiB uncompressed (limit …)'",
    ),
    Case(
        "zip-one-entry-bomb",
        "set import (zip)",
        "one 50 MiB entry of zeros",
        "exit 1, 'compression ratio …:1 (limit 100:1)'",
    ),
    Case(
        "zip-dotdot",
        "set import (zip)",
        "entry `../evil.jpg`",
        "exit 1, 'path leaves the archive'; nothing outside the temp folder",
    ),
    Case(
        "zip-absolute",
        "set import (zip)",
        "entry `/tmp/evil.jpg`",
        "exit 1, 'absolute path in the archive'",
    ),
    Case(
        "zip-symlink",
        "set import (zip)",
        "a symlink entry to /etc/passwd",
        "exit 1, 'symbolic link in the archive'",
    ),
    Case(
        "zip-not-a-zip",
        "set import (zip)",
        "random bytes named .zip",
        "exit 1, 'not a readable zip archive' (or no images/ folder)",
    ),
    Case(
        "zip-truncated",
        "set import (zip)",
        "a zip cut in half",
        "exit 1, names the archive; nothing written",
    ),
    # --- set import: folder and names ------------------------------------------------------
    Case(
        "set-name-newline",
        "set import (folder)",
        "`--name 'sod\\n'`",
        "exit 1, 'invisible, space or control character (U+000A …)'",
    ),
    Case(
        "set-name-uppercase",
        "set import (folder)",
        "`--name SOD`",
        "exit 1, 'canonical form 'sod''",
    ),
    Case(
        "set-name-zero-width",
        "set import (folder)",
        "`--name 'so\\u200bd'`",
        "exit 1, 'U+200B ZERO WIDTH SPACE'",
    ),
    Case(
        "set-name-reserved",
        "set import (folder)",
        "`--name upload`",
        "exit 1, 'reserved by the site's URLs'",
    ),
    Case(
        "set-image-pixel-bomb",
        "set import (folder)",
        "a PNG whose header claims 20000×20000",
        "item skipped: 'over the … MP limit (DATASET_MAX_PIXELS …)', not Pillow's 179 MP",
    ),
    Case(
        "set-no-images",
        "set import (folder)",
        "a folder without images/",
        "exit 1, 'no images/ folder and no manifest.csv'",
    ),
    # --- set import: manifest ---------------------------------------------------------------
    Case(
        "manifest-not-utf8",
        "set import (manifest)",
        "manifest.csv in Latin-1 bytes",
        "exit 1, 'manifest is not readable UTF-8 text'",
    ),
    Case(
        "manifest-empty",
        "set import (manifest)",
        "an empty manifest.csv",
        "exit 1, 'manifest is empty (no header row)'",
    ),
    Case(
        "manifest-dotdot",
        "set import (manifest)",
        "rows pointing at `../../outside.jpg`",
        "exit 1; nothing read from outside the folder, nothing written",
    ),
    # --- predictions import (imported runs) --------------------------------------------------
    Case(
        "predictions-zip-bomb",
        "predictions import (web zip)",
        "valid PNGs plus 300 × 1 MiB of zeros",
        "400 'DATASET_ZIP_MAX_RATIO' naming preds.zip; no run, no job, no temp folder",
    ),
    Case(
        "predictions-zip-dotdot",
        "predictions import (web zip)",
        "entry `../../evil.png`",
        "400 'path leaves the archive'; nothing created",
    ),
    Case(
        "predictions-png-bomb",
        "predictions import (CLI)",
        "a PNG header claiming 20000×20000",
        "exit 1 naming the file, 'decompression-bomb guard' (was a traceback)",
    ),
    # --- model upload: file and spec ---------------------------------------------------------
    Case(
        "model-pickle",
        "model upload (file)",
        "a pickled checkpoint via the REST API",
        "201 rejected 'pickle'; no bytes in media",
    ),
    Case(
        "model-random-bytes",
        "model upload (file)",
        "random bytes named .pt2",
        "201 rejected 'not a recognised model file'; no bytes in media",
    ),
    Case(
        "model-zip-traversal",
        "model upload (file)",
        "a .pt2 zip with a `../` entry",
        "201 rejected naming the entry; no bytes in media",
    ),
    Case(
        "model-rejected-by-validation",
        "model upload (file)",
        "a model that outputs NaN",
        "rejected by the sandbox; its file removed from media",
    ),
    Case(
        "spec-several-problems",
        "model upload (spec)",
        "a spec with 3 wrong fields (REST API)",
        "rejected listing every problem with its JSON path",
    ),
    Case(
        "spec-not-json",
        "model upload (spec)",
        "`spec={nope`",
        "400 'The spec is not valid JSON'; no row",
    ),
    Case(
        "spec-nan",
        "model upload (spec)",
        '`"mean": [NaN, 0, 0]` by web form, API and CLI',
        "400 / exit 2 'NaN is not valid JSON; spec numbers must be finite'; no row",
    ),
    Case(
        "cli-family-newline",
        "model upload (CLI)",
        "`register_model --family 'subject-lift\\n'`",
        "exit 2, 'control character'; no family row",
    ),
    Case(
        "cli-parent-unknown",
        "model upload (CLI)",
        "`--parent 9.9.9` on a new family",
        "exit 2, 'Parent version … does not exist'; no family row",
    ),
    Case(
        "web-family-zero-width",
        "model upload (web form)",
        "family `subject\\u200b-lift`",
        "400 form error 'U+200B'; no row",
    ),
    # --- names through the REST API and the admin --------------------------------------------
    Case(
        "api-alias-newline",
        "REST API",
        "POST aliases/`production%0A`/ by a researcher",
        "400 'control character'; no alias, no history",
    ),
    Case(
        "api-alias-omicron",
        "REST API",
        "alias `productiοn` (Greek omicron)",
        "400 'non-ASCII character … GREEK SMALL LETTER OMICRON'",
    ),
    Case(
        "api-alias-trailing-dot",
        "REST API",
        "alias `production.`",
        "400 'must end with a letter or digit'",
    ),
    Case(
        "api-alias-leet",
        "REST API",
        "alias `pr0duction`",
        "400 'looks like the reserved alias 'production''",
    ),
    Case(
        "api-alias-uppercase",
        "REST API",
        "alias `PRODUCTION` by a researcher",
        "403 'Only release managers and admins may move the production alias'",
    ),
    Case("api-alias-bidi", "REST API", "alias `\\u202eproduction`", "400 'RIGHT-TO-LEFT OVERRIDE'"),
    Case(
        "api-version-newline",
        "REST API",
        "upload with version `1.0.0\\n`",
        "400 names the field 'version'; no row",
    ),
    Case(
        "api-run-bad-json",
        "REST API",
        "POST /runs/api/runs/ with `{nope`",
        "400 JSON parse error; no run",
    ),
    Case(
        "api-token-guessing",
        "REST API",
        "20 wrong tokens from one address, then a good one",
        "429 'Too many failed sign-in attempts'",
    ),
    Case(
        "api-deep-nesting",
        "REST API",
        "100 000 nested `[` to every POST route",
        "400 'nested deeper than 64 levels', never 500",
    ),
    Case(
        "api-huge-json",
        "REST API",
        "an 11 MB JSON body to every POST route",
        "400 'the body is over … bytes', never 500",
    ),
    Case(
        "login-rotating-forwarded-for",
        "login form (production profile)",
        "60 wrong passwords over 60 usernames, X-Forwarded-For rotated by a direct client",
        "429 from the 20th on; 20 lockout rows, all for the real address",
    ),
    Case(
        "token-rotating-forwarded-for",
        "REST API (production profile)",
        "60 wrong tokens, X-Forwarded-For rotated",
        "401 ×19, then 429; one lockout row",
    ),
    Case(
        "admin-family-uppercase",
        "Django admin",
        "add family `Production-Models`",
        "form error 'canonical form'; no row",
    ),
    # --- numbers in URLs, query strings, manifests, file names ---------------------------------
    Case(
        "url-fuzz-numbers",
        "every URL pattern",
        "`²`, `١٢`, 10^23, -1, 0, 10 000 digits in each path and query parameter, every role",
        "never 500, never Python's own message",
    ),
    Case(
        "url-set-superscript",
        "leaderboard",
        "`/?set=²`, `/releases/?set=²`",
        "400 'set: expected a whole number of digits 0-9, got '²''",
    ),
    Case(
        "url-rev-superscript", "set version page", "`?rev=²`", "400 'rev: expected a whole number'"
    ),
    Case(
        "url-instance-superscript",
        "run item files",
        "`…/items/<id>/instance-²`",
        "404",
    ),
    Case(
        "url-compare-superscript",
        "compare page",
        "`/runs/compare/?a=²`",
        "400 ''²' is not a model reference', not int()'s message",
    ),
    Case(
        "manifest-skin-tone-superscript",
        "set import (manifest)",
        "`skin_tone=²` and an instance file `².png`",
        "item skipped 'skin_tone '²' is not in the vocabulary'; the rest imported; no temp folder",
    ),
    Case(
        "web-import-superscript",
        "set import (web upload)",
        "the same set as a zip",
        "done after one attempt (an input error is never retried); no temp path in any message",
    ),
    # --- settings ------------------------------------------------------------------------------
    Case(
        "gate-margin-infinity",
        "release gates (page, admin)",
        '`metric_margins {"iou": Infinity}`',
        "400 'Infinity is not valid JSON'; gates unchanged",
    ),
    Case(
        "gate-margin-overflow",
        "release gates (page, admin)",
        '`metric_margins {"iou": 1e999}`',
        "400 'overflows a number'; gates unchanged",
    ),
    Case(
        "gate-min-win-rate-impossible",
        "release gates (page, admin)",
        "`min_win_rate=5`",
        "400 'min_win_rate 5.0 can never be met: a win rate lies between 0 and 1'",
    ),
    Case(
        "campaign-items-per-pair-huge",
        "campaign creation",
        "`items_per_pair=10**30`",
        "400 'Ensure this value is less than or equal to 1000000'; no campaign",
    ),
    # --- rating submit ---------------------------------------------------------------------
    Case(
        "rate-seconds-nan",
        "rating submit",
        "`seconds: NaN`",
        "400 'seconds: expected a finite number'; no rating",
    ),
    Case(
        "rate-seconds-infinity",
        "rating submit",
        "`seconds: Infinity`",
        "400 'seconds: expected a finite number'; no rating",
    ),
    Case(
        "rate-seconds-overflow",
        "rating submit",
        "`seconds: 1e309`",
        "400 'finite number'; no rating",
    ),
    Case("rate-seconds-negative", "rating submit", "`seconds: -5`", "400 'from 0'; no rating"),
    Case(
        "rate-seconds-string",
        "rating submit",
        '`seconds: "12"`',
        "400 'number of seconds'; no rating",
    ),
    Case(
        "rate-seconds-list", "rating submit", "`seconds: [1]`", "400 'number of seconds'; no rating"
    ),
    Case(
        "rate-seconds-huge-int",
        "rating submit",
        "`seconds: 10**400`",
        "400 'finite number'; no rating",
    ),
    Case(
        "rate-unknown-choice",
        "rating submit",
        '`choice: "both_good"`',
        "400 'choice: expected one of'; no rating",
    ),
    Case(
        "rate-reasons-string",
        "rating submit",
        '`reasons: "edges"`',
        "400 'reasons: expected a list'; no rating",
    ),
    Case(
        "rate-reasons-unknown",
        "rating submit",
        '`reasons: ["<script>"]`',
        "400 'unknown tag'; no rating",
    ),
    Case(
        "rate-score-bool",
        "rating submit",
        "`score: true` (absolute campaign)",
        "400 'score: expected a whole number'; no rating",
    ),
    Case(
        "rate-unknown-field",
        "rating submit",
        '`{…, "annotator": 1}`',
        "400 'unknown field'; no rating",
    ),
    Case("rate-invalid-json", "rating submit", "`{nope`", "400 'not valid UTF-8 JSON'"),
    Case("rate-invalid-utf8", "rating submit", "bytes `\\xff\\xfe`", "400 'not valid UTF-8 JSON'"),
    Case("rate-json-array", "rating submit", "`[1, 2]`", "400 'send a JSON object'"),
    Case(
        "rate-deep-nesting",
        "rating submit",
        "100 000 nested `[`",
        "400 (body too large or not JSON), never 500",
    ),
    Case("rate-huge-body", "rating submit", "a 11 MB body", "400 'too large'; never 500"),
    Case(
        "rate-wrong-content-type",
        "rating submit",
        "form-encoded body",
        "400 'send the rating as application/json'",
    ),
    Case(
        "rate-other-users-token",
        "rating submit",
        "another annotator's token",
        "404 'not yours'; their task untouched",
    ),
    Case(
        "rate-closed-campaign",
        "rating submit",
        "a valid rating after the campaign closed",
        "409 'campaign is closed'; no rating",
    ),
    Case(
        "rate-server-error-is-json",
        "rating submit",
        "a body that makes the service raise",
        "500 JSON without details (no debug page even with DEBUG=true)",
    ),
    # --- archives whose names mean two things (set import and predictions import) ----------
    Case(
        "zip-long-entry-name",
        "set import (zip)",
        "an entry `images/<300 × a>.jpg`",
        "exit 1, 'name of 304 bytes (limit 255 bytes per name)'; nothing written",
    ),
    Case(
        "zip-file-and-folder",
        "set import (zip)",
        "an entry `images/x`, then `images/x/y.jpg`",
        "exit 1, 'is a file, and other entries put files inside a folder'",
    ),
    Case(
        "zip-duplicate-entry",
        "set import (zip)",
        "`images/item0.jpg` twice, different bytes",
        "exit 1, 'the same entry appears twice'",
    ),
    Case(
        "zip-case-twins",
        "set import (zip)",
        "`images/item0.jpg` and `images/ITEM0.jpg`",
        "exit 1, 'differs from the entry … only in upper/lower case'",
    ),
    Case(
        "set-stems-case",
        "set import (folder)",
        "`images/item1.jpg` and `images/ITEM1.png`",
        "exit 1 naming both stems; nothing written",
    ),
    Case(
        "web-set-zip-long-name",
        "set import (web upload job)",
        "a 300-character entry name",
        "import failed naming the entry, no server path; no version, no temp folder",
    ),
    Case(
        "predictions-zip-long-name",
        "predictions import (web, API)",
        "a 300-character entry name",
        "400 '(limit 255 bytes per name)' (was a 500)",
    ),
    Case(
        "predictions-zip-file-and-folder",
        "predictions import (web, API)",
        "an entry `x`, then `x/y.png`",
        "400 'is a file, and other entries …' (was a 500)",
    ),
    Case(
        "predictions-zip-duplicate-entry",
        "predictions import (web, API)",
        "one prediction twice, different bytes",
        "400 'the same entry appears twice'",
    ),
    Case(
        "predictions-zip-case-twins",
        "predictions import (web, API)",
        "`img00.png` and `IMG00.png`",
        "400 'only in upper/lower case'",
    ),
    Case(
        "predictions-no-temp-path",
        "predictions import (web, API)",
        "a PNG Pillow cannot open",
        "400 '<name>: cannot read the PNG', no server temp path",
    ),
    # --- look-alike names --------------------------------------------------------------------
    Case(
        "api-alias-cl-for-d",
        "REST API",
        "alias `procluction`",
        "400 'looks like the reserved alias 'production''",
    ),
    Case(
        "api-alias-canclidate",
        "REST API",
        "alias `canclidate`",
        "400 'looks like the reserved alias 'candidate''",
    ),
    Case(
        "api-alias-existing",
        "REST API",
        "alias `b3ta` beside `beta`",
        "400 'looks like the existing alias 'beta''",
    ),
    Case(
        "api-version-letter-o",
        "REST API",
        "version `1.2.o` beside `1.2.0`",
        "400 'has 'o' where a number is expected: it reads as '1.2.0''",
    ),
    Case("api-version-letter-l", "REST API", "version `1.2.l`", "400 'it reads as '1.2.1''"),
    Case("api-version-1.0.o", "REST API", "version `1.0.o`", "400 'it reads as '1.0.0''"),
    Case(
        "version-beside-legacy-look-alike",
        "model upload (CLI)",
        "`1.2.0` where an old row `1.2.o` exists",
        "exit 2 'looks like the existing version'",
    ),
    Case(
        "web-family-1-for-l",
        "model upload (web form)",
        "family `subject-1ift`",
        "400 'looks like the existing family name 'subject-lift''",
    ),
    Case(
        "web-family-underscore",
        "model upload (web form)",
        "family `subject_lift`",
        "400 'looks like the existing family name 'subject-lift''",
    ),
    Case(
        "web-family-production",
        "model upload (web form)",
        "family `production`",
        "400 'is a reserved alias: … 'production:1.0.0''",
    ),
    Case(
        "cli-family-look-alike",
        "model upload (CLI)",
        "`--family subject_1ift`",
        "exit 2 'looks like the existing family name'; no family row",
    ),
    Case(
        "set-name-look-alike",
        "set import (CLI)",
        "`--name pasca1-s-demo`",
        "exit 1 'looks like the existing set name 'pascal-s-demo''",
    ),
    Case(
        "set-name-production",
        "set import (CLI)",
        "`--name production`",
        "exit 1 'is a reserved alias'",
    ),
    Case(
        "set-name-production-look-alike",
        "set import (CLI)",
        "`--name pr0duction`",
        "exit 1 'looks like the reserved alias'",
    ),
    Case(
        "web-set-name-trailing-space",
        "set import (web form)",
        "name `pascal-s-demo ` (space)",
        "400 'U+0020'; not trimmed into the existing set, no import",
    ),
    Case(
        "web-set-name-look-alike",
        "set import (web form)",
        "name `pasca1-s-demo`",
        "400 'looks like the existing set name'; no import",
    ),
    # --- bounded text and CSV ----------------------------------------------------------------
    Case(
        "api-notes-megabyte",
        "REST API",
        "version notes of 1 MB",
        "400 'no more than 10000 characters'; no row",
    ),
    Case(
        "api-provenance-megabyte",
        "REST API",
        "provenance of 1 MB",
        "400 'no more than 10000 characters'; no row",
    ),
    Case(
        "web-provenance-megabyte",
        "model upload (web form)",
        "provenance of 1 MB",
        "400 'at most 10000 characters'",
    ),
    Case(
        "cli-notes-megabyte",
        "model upload (CLI)",
        "`--notes` of 1 MB",
        "exit 2 'notes is 1,000,000 characters long; at most 10,000'",
    ),
    Case(
        "cli-provenance-megabyte",
        "model upload (CLI)",
        "`--provenance` of 1 MB",
        "exit 2 'provenance is 1,000,000 characters long'",
    ),
    Case(
        "cli-set-description-megabyte",
        "set import (CLI)",
        "`--description` of 1 MB",
        "exit 1 'description is 1,000,000 characters long'",
    ),
    Case(
        "api-alias-reason-megabyte",
        "REST API",
        "alias reason of 1 MB",
        "400 'no more than 5000 characters'; no history",
    ),
    Case(
        "api-import-provenance-megabyte",
        "predictions import (API)",
        "provenance of 1 MB",
        "400; no run, no temp folder",
    ),
    Case("csv-space-then-equals", "CSV exports", "a cell ` =1+1`", "written as `' =1+1`"),
    Case(
        "csv-ideographic-space-then-equals",
        "CSV exports",
        "a cell `\u3000=1+1`",
        "written with a leading `'`",
    ),
    Case("csv-fullwidth-equals", "CSV exports", "a cell `＝1+1`", "written as `'＝1+1`"),
    Case("csv-fullwidth-plus", "CSV exports", "a cell `＋1`", "written as `'＋1`"),
    Case("csv-fullwidth-minus", "CSV exports", "a cell `－1`", "written as `'－1`"),
    Case("csv-fullwidth-at", "CSV exports", "a cell `＠SUM(A1)`", "written as `'＠SUM(A1)`"),
    Case("csv-small-equals", "CSV exports", "a cell `﹦1`", "written as `'﹦1`"),
)


def security_table() -> str:
    lines = ["| case | door | sends | expected |", "|---|---|---|---|"]
    for c in CASES:
        lines.append(f"| `{c.id}` | {c.door} | {c.sends} | {c.expect} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(BEGIN)
    print(security_table())
    print(END)
