from django.contrib.auth.models import User
from django.test import TransactionTestCase

from realtime.testing import ChannelCommunicator, ErrorReply


class MegaphoneTests(TransactionTestCase):
    def test_members_hear_a_shout_and_staff_rooms_are_for_staff(self):
        with ChannelCommunicator() as listener, ChannelCommunicator(user=User.objects.create_user("ann")) as ann:
            listener.join("megaphone:lobby")
            ann.join("megaphone:lobby")
            self.assertEqual(ann.push("megaphone:lobby", "shout", {"text": "hello"}), {"length": 5})
            heard = listener.receive_push("megaphone:lobby", "shouted")
            self.assertEqual(heard["data"], {"text": "HELLO", "by": "ann"})
            with self.assertRaises(ErrorReply) as refused:
                ann.join("megaphone:staff-only")
            self.assertEqual(refused.exception.code, "forbidden")
