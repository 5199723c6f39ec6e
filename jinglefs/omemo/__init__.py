"""Our OMEMO device per account: the key envelope JET uses (XEP-0396), and trust.

Built on python-omemo (``omemo``) with its legacy backend (``oldmemo``,
``eu.siacs.conversations.axolotl``, the namespace Conversations and Dino use):

* :mod:`.storage`  the keys, sessions and trust of one account in one JSON file (0600)
* :mod:`.backend`  the oldmemo backend, able to build key-transport messages
* :mod:`.trust`    trust levels (BTBV), fingerprints as people see them
* :mod:`.pep`      device list and bundle over PEP, through our XMPP connection
* :mod:`.device`   :class:`~.device.OmemoDevice`: the KeyEnvelope and the trust API
"""
