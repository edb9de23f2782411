"""The saved-model contract: what a model dir holds, how it is read and written.

Every reader and writer of a model dir goes through this package: ``layout`` names the files,
``saved`` reads a dir into a typed ``SavedModel`` (refusing formats it does not know),
``writer`` stamps the format and mlship versions, ``parity`` owns the compiled twin's report,
``manifest`` writes the integrity manifest at export and verifies a dir against it at load.
"""
