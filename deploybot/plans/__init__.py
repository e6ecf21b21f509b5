"""Deployment plans: what a deploy is and whether it may go ahead.

Owns the plan model (:mod:`.model`), reading plan files with file:line:key errors
(:mod:`.files` over the YAML node helpers of :mod:`.yamlnodes`), the plans in force with
their last good versions (:mod:`.book`), the post-mortem's readiness policy
(:mod:`.policy`) and the countdown/window arithmetic (:mod:`.schedule`).

May import only the foundation modules (:mod:`deploybot.errors`, :mod:`deploybot.lines`,
:mod:`deploybot.durations`).  Pure: no store, no clock, no I/O but reading plan files.
"""
