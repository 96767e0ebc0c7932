"""The page server's ways in for a newcomer, without a socket: signing up, the Open a room form, and
pages that show only what their topics will (the jobs page)."""

from django.contrib.auth.models import User
from django.test import TestCase

from chat.models import Room
from jobs.models import Job

PASSWORD = "a long enough password"


class SignupTests(TestCase):
    def test_signing_up_creates_the_account_logs_in_and_goes_where_the_user_was_going(self):
        response = self.client.post("/accounts/signup/", {"username": "newcomer", "password1": PASSWORD,
                                                          "password2": PASSWORD, "next": "/jobs/"})
        self.assertRedirects(response, "/jobs/", fetch_redirect_response=False)
        self.assertTrue(User.objects.filter(username="newcomer").exists())
        self.assertContains(self.client.get("/chat/"), 'data-testid="username">newcomer<')

    def test_a_refused_signup_says_why_and_creates_nothing(self):
        response = self.client.post("/accounts/signup/", {"username": "newcomer", "password1": PASSWORD,
                                                          "password2": "another one"})
        self.assertContains(response, "didn", status_code=400)  # "The two password fields didn’t match."
        self.assertFalse(User.objects.exists())

    def test_a_next_elsewhere_is_not_followed(self):
        response = self.client.post("/accounts/signup/", {"username": "newcomer", "password1": PASSWORD,
                                                          "password2": PASSWORD, "next": "https://evil.example/"})
        self.assertRedirects(response, "/chat/", fetch_redirect_response=False)

    def test_every_page_offers_log_in_and_sign_up_to_a_guest_and_log_out_to_a_user(self):
        for path in ("/", "/chat/", "/jobs/", "/time/", "/echo/"):
            page = self.client.get(path)
            self.assertContains(page, 'data-testid="log-in"')
            self.assertContains(page, 'data-testid="sign-up"')
        self.client.force_login(User.objects.create_user("ann", password=PASSWORD))
        self.assertContains(self.client.get("/time/"), 'data-testid="log-out"')
        self.assertRedirects(self.client.post("/accounts/logout/"), "/chat/", fetch_redirect_response=False)


class OpenRoomFormTests(TestCase):
    def test_a_user_goes_to_the_room_named_which_its_join_opens(self):
        self.client.force_login(User.objects.create_user("ann", password=PASSWORD))
        self.assertRedirects(self.client.get("/chat/", {"name": " Book-Club "}), "/chat/book-club/",
                             fetch_redirect_response=False)
        self.assertEqual(self.client.get("/chat/book-club/").status_code, 200)

    def test_a_guest_goes_to_a_room_that_exists_and_is_told_to_log_in_for_a_new_one(self):
        Room.objects.create(name="open-to-all")
        self.assertRedirects(self.client.get("/chat/", {"name": "open-to-all"}), "/chat/open-to-all/",
                             fetch_redirect_response=False)
        page = self.client.get("/chat/", {"name": "brand-new"})
        self.assertContains(page, "log in or sign up to open it", status_code=400)
        self.assertFalse(Room.objects.filter(name="brand-new").exists())

    def test_a_name_that_cannot_be_a_room_is_refused_with_the_rule(self):
        self.client.force_login(User.objects.create_user("ann", password=PASSWORD))
        self.assertContains(self.client.get("/chat/", {"name": "two words"}), "A room name is 1-64", status_code=400)


class JobsPageTests(TestCase):
    def test_the_page_shows_and_watches_only_the_user_s_jobs(self):
        ann, bob = (User.objects.create_user(name, password=PASSWORD) for name in ("ann", "bob"))
        mine, theirs = Job.objects.create(owner=ann), Job.objects.create(owner=bob)
        guest_page = self.client.get("/jobs/")
        for job in (mine, theirs):  # a guest sees none
            self.assertNotContains(guest_page, f'data-job-id="{job.id}"')
        self.client.force_login(ann)
        page = self.client.get("/jobs/")
        self.assertContains(page, f'data-job-id="{mine.id}"')
        self.assertNotContains(page, f'data-job-id="{theirs.id}"')
        self.assertContains(page, f'data-topic="jobs:user:{ann.pk}"')
