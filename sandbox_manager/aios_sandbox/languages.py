"""The languages a sandbox runs: adding one is one entry in LANGUAGES."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Language:
    name: str
    filename: str
    argv: tuple[str, ...]  # "{file}" stands for the path of the code file
    session_mode: str = ""  # how a session keeps its state: "interpreter", "shell"

    def command(self) -> list[str]:
        return list(self.argv)


LANGUAGES: dict[str, Language] = {
    lang.name: lang
    for lang in (
        Language("python", "main.py", ("python3", "-u", "{file}"), "interpreter"),
        Language("bash", "main.sh", ("bash", "{file}"), "shell"),
    )
}


class UnknownLanguage(ValueError):
    def __init__(self, name: str):
        super().__init__(f"unknown language {name!r}; known: {', '.join(sorted(LANGUAGES))}")


def get_language(name: str) -> Language:
    try:
        return LANGUAGES[name]
    except KeyError:
        raise UnknownLanguage(name) from None
