"""``infrabot eval``: run an engine over a corpus of requests and score what it came to."""

from bot.evals.corpus import Case, load_corpus
from bot.evals.report import CaseResult, EvalReport
from bot.evals.run import run_eval

__all__ = ["Case", "CaseResult", "EvalReport", "load_corpus", "run_eval"]
