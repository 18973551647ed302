"""docs/design.md is the repository's own design: every citation of it resolves, and it names every node
parameter (docs/design.md section 3), so it cannot silently fall behind the code."""
import re
import subprocess
from pathlib import Path

from depth_kd_ros.params import SPECS

ROOT = Path(__file__).resolve().parents[2]
DESIGN = ROOT / 'docs/design.md'
CITATION = re.compile(r'design\.md,? sections? ([0-9][0-9, and-]*)')


def _sections() -> dict[int, str]:
    text = DESIGN.read_text()
    parts = re.split(r'^## ([0-9]+)\. .*$', text, flags=re.MULTILINE)
    return {int(number): body for number, body in zip(parts[1::2], parts[2::2], strict=True)}


def _tracked_text_files() -> list[Path]:
    names = subprocess.run(['git', 'ls-files'], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [ROOT / n for n in names.split() if n.endswith(('.py', '.md', '.yaml', '.sh', '.xml', 'Makefile'))
            and n != 'docs/design.md']


def test_every_design_citation_names_the_repository_file_and_an_existing_section():
    sections = _sections()
    bad = []
    for path in _tracked_text_files():
        text = ' '.join(path.read_text().split())  # citations wrap across lines
        for match in re.finditer(r'(?<!docs/)design\.md', text):
            bad.append(f'{path.relative_to(ROOT)}: {text[match.start() - 20:match.end()]!r} is not docs/design.md')
        for match in CITATION.finditer(text):
            for number in map(int, re.findall(r'[0-9]+', match.group(1))):
                if number not in sections:
                    bad.append(f'{path.relative_to(ROOT)}: section {number} does not exist')
    assert not bad, '\n'.join(bad)


def test_design_names_every_node_parameter_in_the_contract_section():
    contract = _sections()[3]
    missing = [name for name in SPECS if f'`{name}`' not in contract]
    assert not missing, f'docs/design.md section 3 does not name: {missing}'
