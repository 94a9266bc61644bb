"""A tiny Sphinx extension: drop duplicated inline scripts from each page.

Jupyter Book 1 with sphinx-thebe 0.3 emits the inline ``const THEBE_JS_URL = ...`` script
twice, which makes the browser log "Identifier 'THEBE_JS_URL' has already been declared" on
every page. Keeping the first copy of each identical script removes the error.
"""


def _dedupe(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for script in scripts:
        # the two copies differ only in filename (None vs ""): compare filename-or-empty + attributes
        filename = getattr(script, "filename", script) or ""
        key = (str(filename), repr(sorted(getattr(script, "attributes", {}).items())))
        if key in seen:
            continue
        seen.add(key)
        kept.append(script)
    scripts[:] = kept


def setup(app):
    app.connect("html-page-context", _dedupe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
