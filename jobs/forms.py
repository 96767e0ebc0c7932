from django import forms


class StartJobForm(forms.Form):
    steps = forms.IntegerField(min_value=1, max_value=100, initial=20)
    fail = forms.BooleanField(required=False, label="Fail halfway")
