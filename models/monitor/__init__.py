"""Live model performance: labels joined to logged predictions (`mlgen monitor`).

Pure computation: it reads files and returns a result that says whether a retrain is asked
for; `mlgen.commands.monitor` calls the retrain hook. Nothing here imports mlgen.publish.
"""
