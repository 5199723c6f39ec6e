"""Our OMEMO device per account: the key envelope JET uses (XEP-0396), and trust.

Built on python-omemo (``omemo``) with its legacy backend (``oldmemo``,
``eu.siacs.conversations.axolotl``, the namespace Conversations and Dino use):

* :mod:`.storage`  the keys, sessions and trust of one account in one JSON file (0600)
* :mod:`.backend`  the oldmemo backend, able to build key-transport messages
* :mod:`.trust`    trust levels (BTBV), fingerprints as people see them
* :mod:`.pep`      device list and bundle over PEP, through our XMPP connection
* :mod:`.device`   :class:`~.device.OmemoDevice`: the KeyEnvelope and the trust API
"""

import logging

# python-omemo logs its routine first-run and resync notices (a fresh server, our own
# device not yet in the list) as warnings with tracebacks, and adds no handler of its own,
# so Python's last-resort handler would print them on the CLI's stderr.  A NullHandler on
# its logger keeps them out of the terminal; an application that configures logging (the
# desktop app, --debug runs) still receives them through the root logger.
logging.getLogger("omemo").addHandler(logging.NullHandler())
