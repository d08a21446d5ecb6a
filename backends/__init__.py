"""graphc.backends: code generators that consume only graphc.ir."""
