"""``infrabot eval``: run an engine over a corpus of requests and score the drafts."""

from bot.evals.run import CaseResult, EvalReport, load_corpus, run_eval

__all__ = ["CaseResult", "EvalReport", "load_corpus", "run_eval"]
