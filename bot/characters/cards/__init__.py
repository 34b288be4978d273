"""Character cards (SillyTavern's V1, V2 and V3; PNG, JSON and CHARX) in and out of Troupe.

* :mod:`.png` and :mod:`.charx`: the containers; :mod:`.files` reads any card file;
* :mod:`.v1v2v3`: card JSON into Troupe fields; :mod:`.examples`: ``mes_example`` text;
* :mod:`.validate`: those fields into a :class:`~bot.characters.schema.Character`;
* :mod:`.load`: a card in the characters folder; :mod:`.importing`: ``troupe import-card``;
* :mod:`.export`: ``troupe export-card``.
"""
